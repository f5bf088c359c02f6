"""`changebot calendar`: the feed's secret URL and an .ics export, from the database alone
(no Slack credentials, no app, no scheduler)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adapters.ics import feed_body
from bot.safe_output import output_file
from domain.clock import SystemClock
from domain.policy import Policy
from domain.service import ChangeService
from storage.database import create_engine, session_factory
from storage.repository import SqlChangeRepository


class _NoSlack:
    """The feed needs neither user groups nor sends; asking for them is a bug."""

    async def expand(self, refs: Sequence[str]) -> frozenset[str]:
        raise RuntimeError("the calendar commands have no Slack connection")

    async def time_zone(self, user: str) -> str | None:
        raise RuntimeError("the calendar commands have no Slack connection")

    def wake(self) -> None:
        return None


async def feed_token_command(*, database_url: str, rotate: bool, base_url: str) -> int:
    """Show a new token once: only its hash is stored, so an existing one cannot be shown again."""
    engine = create_engine(database_url)
    try:
        repository = SqlChangeRepository(session_factory(engine))
        token = await repository.feed_token(now=SystemClock().now(), rotate=rotate)
    finally:
        await engine.dispose()
    if token is None:
        print(
            "the feed already has a token, shown only when it was made: "
            "`changebot calendar token --rotate` makes a new URL (the old one stops working)",
            file=sys.stderr,
        )
        return 1
    print(f"{base_url.rstrip('/')}/calendar.ics?token={token}")
    print("Keep this URL secret; it is shown only now.", file=sys.stderr)
    if rotate:
        print("The old token no longer works: re-subscribe calendars with the new URL.", file=sys.stderr)
    return 0


async def calendar_export_command(*, database_url: str, policy: Policy, out: str, force: bool) -> int:
    engine = create_engine(database_url)
    try:
        service = ChangeService(
            repository=SqlChangeRepository(session_factory(engine)),
            directory=_NoSlack(),
            notifier=_NoSlack(),
            clock=SystemClock(),
            policy=policy,
        )
        body = await feed_body(service, policy)
    finally:
        await engine.dispose()
    if out == "-":
        sys.stdout.buffer.write(body)
        return 0
    with output_file(out, force=force, binary=True) as file:
        file.write(body)
    print(f"wrote {out}")
    return 0
