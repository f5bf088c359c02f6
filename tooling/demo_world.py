"""The demo's world: the Slack emulator seeded with the demo's people, the bot on a
loopback port, and a driver that acts like Slack (signed commands, clicks, form submissions)
and like the scheduler (due notices, the outbox, the digest) on a clock it moves by hand."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.app import Changebot, build_changebot, migrate
from bot.settings import Settings
from domain.clock import FakeClock, SystemClock
from domain.policy_loader import parse_policy
from storage.database import session_factory
from storage.models import NoticeRow, UtcDateTime
from storage.outbox import OutboxStore
from tooling.demo_feed import SlackFeed
from tooling.demo_policy import CHANNELS, DEMO_POLICY, PEOPLE, USER_GROUPS
from tooling.emulator import SlackEmulator
from tooling.render import Names
from tooling.settle import settle_outbox
from tooling.slack_payloads import (
    click_body,
    command_body,
    form_headers,
    interaction_body,
    trigger_id,
    view_submission,
)
from tooling.slack_send import describe_reply

# A Monday morning in London (GMT in November), before the 09:00 digest.
START = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


class DemoClock:
    """Fake time while the script runs (a week passes in seconds); once live, real time
    flows on from where the script stopped, so nothing it scheduled jumps or goes stale."""

    def __init__(self, start: datetime) -> None:
        self._fake = FakeClock(start)
        self._system = SystemClock()
        self._offset: timedelta | None = None

    def now(self) -> datetime:
        if self._offset is None:
            return self._fake.now()
        return self._system.now() + self._offset

    def set(self, moment: datetime) -> None:
        if self._offset is not None:
            raise RuntimeError("the demo clock is live: time can no longer be set")
        self._fake.set(moment)

    def go_live(self) -> timedelta:
        """From now on follow the wall clock; returns how far ahead of it the demo runs."""
        if self._offset is None:
            self._offset = self._fake.now() - self._system.now()
        return self._offset


def _seeded_emulator(clock: DemoClock) -> SlackEmulator:
    """The workspace the policy names: its people (with time zones), group and channels."""
    emulator = SlackEmulator(clock=clock)
    for user_id, (name, role) in PEOPLE.items():
        emulator.users[user_id] = {
            "name": name,
            "real_name": f"{name.capitalize()} ({role})",
            "tz": "Europe/London",
            "email": f"{name}@example.com",
        }
    for group_id, (_handle, members) in USER_GROUPS.items():
        emulator.usergroups[group_id] = list(members)
    for channel in CHANNELS:
        emulator.add_channel(channel)
    return emulator


def demo_names() -> Names:
    return Names(
        users={uid: name for uid, (name, _role) in PEOPLE.items()},
        channels=CHANNELS,
        groups={gid: name for gid, (name, _members) in USER_GROUPS.items()},
        zone=parse_policy(DEMO_POLICY, source="demo policy").zone,
    )


@dataclass
class DemoWorld:
    """The emulator, the bot on a loopback port, and a driver that acts like Slack and
    like the scheduler. Everything lives in one event loop and one temp dir."""

    workdir: Path
    clock: DemoClock
    emulator: SlackEmulator
    bot: Changebot
    runner: web.AppRunner
    bot_url: str
    signing_secret: str
    http: aiohttp.ClientSession
    feed: SlackFeed
    names: Names
    sessions: async_sessionmaker[AsyncSession]
    exits: contextlib.AsyncExitStack = field(repr=False)
    echo_requests: bool = False
    _serial: int = 0

    # --- lifecycle ------------------------------------------------------------------
    @classmethod
    async def open(cls, out: TextIO) -> DemoWorld:
        """Start everything; whatever started is stopped again if a later step fails."""
        async with contextlib.AsyncExitStack() as exits:
            workdir = Path(tempfile.mkdtemp(prefix="changebot-demo-"))
            exits.callback(shutil.rmtree, workdir, ignore_errors=True)
            clock = DemoClock(START)
            emulator = _seeded_emulator(clock)
            await emulator.start()
            exits.push_async_callback(emulator.stop)
            secret = secrets.token_hex(16)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                slack_bot_token="xoxb-demo",
                slack_signing_secret=secret,
                slack_api_url=emulator.base_url,
                database_url=f"sqlite+aiosqlite:///{workdir / 'changebot.db'}",
                changebot_policy="(built-in demo policy)",
                pagerduty_api_token="",  # never reach PagerDuty, whatever the environment says
                pagerduty_routing_key="",
            )
            await migrate(settings)
            # one delivery lane: the story prints in the same order every run
            bot = build_changebot(
                settings, parse_policy(DEMO_POLICY, source="demo policy"), clock=clock, lanes=1
            )
            exits.push_async_callback(bot.stop)
            world_box: list[DemoWorld] = []
            bot.web.middlewares.append(_echo_middleware(world_box))
            runner = web.AppRunner(bot.web, access_log=None)
            await runner.setup()
            exits.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = int(runner.addresses[0][1])
            http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            exits.push_async_callback(http.close)
            names = demo_names()
            world = cls(
                workdir=workdir,
                clock=clock,
                emulator=emulator,
                bot=bot,
                runner=runner,
                bot_url=f"http://127.0.0.1:{port}/slack/events",
                signing_secret=secret,
                http=http,
                feed=SlackFeed(emulator=emulator, names=names, clock=clock, out=out),
                names=names,
                sessions=session_factory(bot.engine),
                exits=exits.pop_all(),
            )
        world_box.append(world)
        try:
            await bot.start(run_scheduler=False)
            await world.settle()
        except BaseException:
            await world.close()
            raise
        return world

    async def close(self) -> None:
        await self.exits.aclose()

    # --- acting like Slack ----------------------------------------------------------
    def _trigger(self, user: str) -> str:
        self._serial += 1
        return trigger_id(user, self._serial)

    async def post(self, body: bytes) -> tuple[int, str]:
        """POST to /slack/events, signed with the bot's own (demo) time."""
        headers = form_headers(body, timestamp=int(self.clock.now().timestamp()), secret=self.signing_secret)
        async with self.http.post(self.bot_url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def command(self, user: str, text: str, *, channel: str = "CCHANGES") -> None:
        self.feed.say(f"{self.names.user(user)} types /change {text} in {self.feed.place(channel)}")
        body = command_body(
            text,
            user=user,
            trigger=self._trigger(user),
            channel=channel,
            channel_name=CHANNELS.get(channel, ""),
        )
        status, reply = await self.post(body)
        self._expect_ok(status, reply)
        if reply.strip():
            shown = describe_reply(status, reply, user=user, names=self.names).split("\n", 1)[-1]
            self.feed.show(f"{self.feed.place(channel)}, only {self.names.user(user)} sees this", shown)
        await self.settle()

    async def click(self, user: str, label: str, action_id: str, value: str, *, channel: str) -> None:
        self.feed.say(f"{self.names.user(user)} clicks [ {label} ] in {self.feed.place(channel)}")
        at = self.clock.now().timestamp()
        body = click_body(action_id, value, user=user, channel=channel, trigger=self._trigger(user), at=at)
        status, reply = await self.post(body)
        self._expect_ok(status, reply)
        await self.settle()

    async def submit(
        self, user: str, callback_id: str, values: dict[str, Any], *, what: str, private_metadata: str = ""
    ) -> None:
        self.feed.say(f"{self.names.user(user)} {what}")
        payload = view_submission(
            callback_id, values, user=user, trigger=self._trigger(user), private_metadata=private_metadata
        )
        status, reply = await self.post(interaction_body(payload))
        self._expect_ok(status, reply)
        if reply.strip() and json.loads(reply).get("response_action") == "errors":
            raise RuntimeError(f"the demo's form was refused: {reply}")
        await self.settle()

    @staticmethod
    def _expect_ok(status: int, reply: str) -> None:
        if status != 200:
            raise RuntimeError(f"the bot answered HTTP {status}: {reply[:300]}")

    # --- acting like the scheduler --------------------------------------------------
    async def settle(self, *, max_rounds: int = 500) -> None:
        """Let Bolt's listeners finish and deliver every due outbox row. The dispatcher
        paces each channel to one message a second by the bot's clock, so when only
        paced rows remain the clock moves on to the next one (as tests/conftest.py does)."""
        store = OutboxStore(self.sessions)
        dispatcher = self.bot.context.dispatcher
        settled = await settle_outbox(
            dispatcher=dispatcher, store=store, clock=self.clock, max_rounds=max_rounds
        )
        if not settled:
            raise RuntimeError(f"the outbox did not settle: {await store.counts()}")
        self.feed.flush()

    async def tick(self) -> None:
        """What the scheduler's one-second tick does: due notices, then the outbox."""
        while await self.bot.context.service.process_due_notices() >= 100:
            pass
        await self.settle()

    async def advance_to(self, moment: datetime) -> None:
        """Move time forward stopping at every notice that comes due on the way, so each
        one goes out at its own moment, as with the scheduler running all along."""
        for _ in range(1000):
            due = await self._next_notice()
            if due is None or due > moment:
                break
            if due > self.clock.now():
                self.clock.set(due)
            await self.tick()
        if moment > self.clock.now():
            self.clock.set(moment)
        await self.tick()

    async def digest(self) -> None:
        """The digest cron job, at the policy's time."""
        await self.bot.context.service.run_digest()
        await self.settle()

    async def _next_notice(self) -> datetime | None:
        earliest = sa.type_coerce(sa.func.min(NoticeRow.due_at), UtcDateTime())
        async with self.sessions() as session:
            result = await session.execute(sa.select(earliest).where(col(NoticeRow.state) == "pending"))
            value: datetime | None = result.scalar_one_or_none()
            return value


def _echo_middleware(box: list[DemoWorld]) -> Middleware:
    """In interactive mode, show what others send to the bot and what it answers them."""

    @web.middleware
    async def echo(request: web.Request, handler: Handler) -> web.StreamResponse:
        world = box[0] if box else None
        if world is None or not world.echo_requests or request.path != "/slack/events":
            return await handler(request)
        body = await request.read()  # aiohttp keeps it for the handler
        user, what, channel = describe_request(body)
        world.feed.say(f"{world.names.user(user)} {what}" if user else what)
        response = await handler(request)
        text = response.text if isinstance(response, web.Response) else None
        if response.status == 401:
            world.feed.say("(refused: bad or stale signature)")
        elif text and text.strip():
            shown = describe_reply(response.status, text, user=user or "", names=world.names)
            place = world.feed.place(channel) if channel else "Slack"
            world.feed.show(
                f"{place}, only {world.names.user(user or '?')} sees this", shown.split("\n", 1)[-1]
            )
        return response

    return echo


def describe_request(body: bytes) -> tuple[str | None, str, str | None]:
    """(user, what they did, channel) of a Slack request body, for the demo's log."""
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}
    if "command" in fields:
        text = f"{fields['command']} {fields.get('text', '')}".strip()
        return fields.get("user_id"), f"types {text}", fields.get("channel_id")
    try:
        payload = json.loads(fields.get("payload", "{}"))
    except ValueError:
        return None, "sent something unreadable", None
    user = (payload.get("user") or {}).get("id")
    channel = (payload.get("channel") or {}).get("id")
    if payload.get("type") == "block_actions":
        action = (payload.get("actions") or [{}])[0]
        return user, f"clicks {action.get('action_id')} {action.get('value', '')}".rstrip(), channel
    if payload.get("type") == "view_submission":
        return user, f"submits the {(payload.get('view') or {}).get('callback_id')} form", channel
    return user, f"sends a {payload.get('type')} request", channel
