"""Two `changebot serve` replicas on one PostgreSQL, one of them killed -9 again and again
while 1,000 notices come due: every notice is delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from bot.app import build_changebot
from bot.settings import Settings
from domain.clock import SystemClock
from domain.intake import ChangeForm
from domain.policy_loader import parse_policy
from storage.database import create_engine
from tests.support import pg_template
from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import clean_env, free_port, spawn_serve, wait_healthy
from tests.support.slack_requests import SIGNING_SECRET
from tooling.emulator import SlackEmulator

pytestmark = pytest.mark.postgres
CHANGES = 250  # x 4 notices (three timeline notices and the overrun alert) = 1,000
TIMELINE = """
timeline:
  short_notice: false
  late_after: 5m
  notices:
    - {id: early, at: -2s, audience: [implementer], text: "early notice"}
    - {id: start, at: 0, audience: [implementer], text: "start notice"}
    - {id: after, at: +2s, audience: [implementer], text: "after notice"}
"""
POLICY = (
    TEST_POLICY.replace("timeline:\n  stakeholders:\n    normal: [CSTAKE]\n", "").replace(
        "  rollback_triggers: [Error rate > 5%]\n", ""
    )
    + TIMELINE
)


KINDS = {"early": "early notice", "start": "start notice", "after": "after notice", "overrun": "Overrun"}


async def query(url: str, sql: str) -> list[sa.Row[Any]]:
    """Straight from the database, past every replica."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(sa.text(sql))).all())
    finally:
        await engine.dispose()


async def notice_states(url: str) -> dict[str, str]:
    """'<implementer number>:<notice key>' -> state."""
    rows = await query(
        url, "SELECT c.implementer, n.key, n.state FROM notice n JOIN change_request c ON c.id = n.change_id"
    )
    return {f"{implementer.removeprefix('UIMPL')}:{key}": state for implementer, key, state in rows}


async def outbox_settled(url: str) -> bool:
    [(left,)] = await query(
        url, "SELECT count(*) FROM outbox WHERE channel LIKE 'UIMPL%' AND state IN ('pending', 'sending')"
    )
    return bool(left == 0)


async def replica(tmp_path: Path, name: str, port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await spawn_serve(
        tmp_path, port, env, stdout=(tmp_path / f"{name}.log").open("ab"), own_session=True
    )


@pytest.fixture
def clock() -> SystemClock:
    """The replicas run on real time, so the emulator's message timestamps must too: a row
    taken over from a killed sender is checked against the channel history from its own
    creation time, and a fake-clock past would hide the message it already posted."""
    return SystemClock()


async def test_killing_a_replica_repeatedly_loses_and_duplicates_no_notice(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    server = await asyncio.to_thread(pg_template.shared_postgres)  # may migrate: alembic runs its own loop
    database = f"k{next(pg_template.db_counter)}"
    server.create_database(database, template="changebot_template")
    url = server.url(database)
    (tmp_path / "policy.yml").write_text(POLICY)
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=emulator.base_url,
        DATABASE_URL=url,
        CHANGEBOT_AUTO_MIGRATE="false",
    )
    # File the changes directly through the use case (the HTTP door is tested elsewhere).
    settings = Settings(slack_bot_token="xoxb-1", slack_api_url=emulator.base_url, database_url=url)
    filer = build_changebot(settings, parse_policy(POLICY), clock=SystemClock())
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
    try:
        await asyncio.gather(
            *(
                filer.context.service.submit_change(
                    form=ChangeForm(
                        title=f"Change {i}",
                        category="normal",
                        impact="low",
                        likelihood="low",
                        services=["api-server"],
                        starts_at=int(start.timestamp()) + i % 5,
                        ends_at=int(start.timestamp()) + i % 5 + 4,
                        description="d",
                        rollback_plan="r",
                        implementer=f"UIMPL{i}",
                        acknowledged_conflicts=tuple(
                            f"CR-{start.year}-{n:04d}" for n in range(1, CHANGES + 1)
                        ),
                    ),
                    requester="UREQ",
                )
                for i in range(CHANGES)
            )
        )
    finally:
        await filer.stop()  # its dispatcher was woken by the filing: no third sender in the test
    ports = [free_port(), free_port()]
    steady = await replica(tmp_path, "steady", ports[0], env)
    victim = await replica(tmp_path, "victim", ports[1], env)
    kills = 0
    rng = random.Random(7)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, f"http://127.0.0.1:{ports[0]}")
            # The last victim's leases run out 15-30 s after it died; generous for a loaded machine.
            deadline = start.timestamp() + 240
            while time.time() < start.timestamp() + 12:
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                os.killpg(victim.pid, signal.SIGKILL)  # at a random point of its work
                await victim.wait()
                kills += 1
                victim = await replica(tmp_path, "victim", ports[1], env)
            while time.time() < deadline:
                states = await notice_states(url)
                if (
                    len(states) == 4 * CHANGES
                    and await outbox_settled(url)
                    and all(state in ("sent", "skipped") for state in states.values())
                ):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # a duplicate would show up now
            states = await notice_states(url)
    finally:
        for process in (steady, victim):
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
        server.drop_database(database)
    assert kills >= 5
    counts: Counter[str] = Counter()
    for i in range(CHANGES):
        for message in emulator.messages(f"D_UIMPL{i}"):
            text = message["text"] + json.dumps(message.get("blocks"))
            for key, kind in KINDS.items():
                if kind in text:
                    counts[f"{i}:{key}"] += 1
    # Every notice is either delivered exactly once, or, when the kills held it past its
    # moment, skipped and audited: never silently lost, never sent twice.
    wrong = {
        name: (state, counts[name])
        for name, state in states.items()
        if not ((state == "sent" and counts[name] == 1) or (state == "skipped" and counts[name] == 0))
    }
    sent = sum(1 for state in states.values() if state == "sent")
    logs = "".join((tmp_path / f).read_text(errors="replace")[-2000:] for f in ("steady.log", "victim.log"))
    assert len(states) == 4 * CHANGES and wrong == {}, logs
    assert sent >= 3 * CHANGES  # most notices survive the kills in time
