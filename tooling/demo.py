"""`changebot demo`: the whole change process in a minute, without a Slack workspace.

The bot runs for real (HTTP door, Bolt, handlers, SQLite, outbox) against the Slack
emulator on loopback; a script plays the people, sending signed requests exactly as Slack
would, and time is compressed: the bot's clock jumps from one due moment to the next and
the scheduler's work (due notices, the outbox, the digest) is done by hand at each stop.
What each person would see in Slack is printed as text as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
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
from domain.model import AuditEntry, Change
from domain.policy_loader import parse_policy
from storage.database import session_factory
from storage.models import NoticeRow, UtcDateTime
from storage.outbox import OutboxStore
from tooling.demo_feed import SlackFeed
from tooling.demo_policy import CHANNELS, DEMO_POLICY, PEOPLE, USER_GROUPS
from tooling.emulator import SlackEmulator
from tooling.render import Names
from tooling.slack_payloads import (
    FORM,
    block_action,
    change_form_state,
    command_body,
    emergency_form_state,
    interaction_body,
    sign,
    trigger_id,
    view_submission,
)
from tooling.slack_send import DemoState, default_state_path, describe_reply, write_state

# A Monday morning in London (GMT in November), before the 09:00 digest.
START = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
CR_NORMAL = "CR-2026-0001"
CR_EMERGENCY = "CR-2026-0002"
CR_NEXT = "CR-2026-0003"


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
        headers = {"Content-Type": FORM, **sign(body, int(self.clock.now().timestamp()), self.signing_secret)}
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
        payload = block_action(
            action_id,
            value,
            user=user,
            channel=channel,
            trigger=self._trigger(user),
            action_ts=f"{self.clock.now().timestamp():.6f}",
        )
        status, reply = await self.post(interaction_body(payload))
        self._expect_ok(status, reply)
        await self.settle()

    async def submit(self, user: str, callback_id: str, values: dict[str, Any], *, what: str) -> None:
        self.feed.say(f"{self.names.user(user)} {what}")
        payload = view_submission(callback_id, values, user=user, trigger=self._trigger(user))
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
        dispatcher = self.bot.context.dispatcher
        store = OutboxStore(self.sessions)
        for _ in range(max_rounds):
            await asyncio.sleep(0)
            await _drain_bolt()
            await dispatcher.drain()
            delivered = await dispatcher.dispatch_due()
            counts = await store.counts()
            if not counts.get("pending") and not counts.get("sending"):
                await _drain_bolt()
                if not (await store.counts()).get("pending"):
                    self.feed.flush()
                    return
                continue
            if delivered == 0:
                next_due = await store.next_due(after=self.clock.now())
                if next_due is not None:
                    self.clock.set(next_due)
        raise RuntimeError(f"the outbox did not settle: {await store.counts()}")

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


async def _drain_bolt() -> None:
    """Bolt runs listeners after the ack in background tasks; wait for them."""
    current = asyncio.current_task()
    for _ in range(500):
        pending = [
            task
            for task in asyncio.all_tasks()
            if task is not current and not task.done() and "listener" in repr(task.get_coro()).lower()
        ]
        if not pending:
            return
        await asyncio.wait(pending, timeout=0.05)


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


# --------------------------------------------------------------------------- the script
async def play(world: DemoWorld) -> None:
    feed = world.feed
    window_start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # Wednesday 10:00 London

    feed.banner("1. bob files a normal change")
    await world.command("UBOB", "new")
    form = change_form_state(
        title="Upgrade the API gateway to 2.4",
        category="normal",
        impact="medium",
        likelihood="medium",
        services=["api-server"],
        implementer="UALICE",
        starts_at=int(window_start.timestamp()),
        ends_at=int((window_start + timedelta(hours=1)).timestamp()),
        description="Roll out gateway 2.4 with the new TLS ciphers; tell <!channel> only if it goes wrong.",
        rollback_plan="Redeploy 2.3 from the previous release tag.",
        test_plan="Smoke tests, then the TLS scanner against production.",
    )
    await world.submit(
        "UBOB",
        "change_new",
        form,
        what="fills in the form (medium impact × medium likelihood, api-server, Wed 10:00–11:00, "
        "@alice implements) and clicks [ Submit ]",
    )

    feed.banner("2. Approval: not by yourself, not by the wrong role, then by a tech lead")
    await world.advance_to(START + timedelta(minutes=5))
    await world.click("UBOB", "Approve", "change_approve", CR_NORMAL, channel="CCHANGES")
    await world.click("UERIN", "Approve", "change_approve", CR_NORMAL, channel="CCHANGES")
    await world.advance_to(START + timedelta(minutes=20))
    await world.click("UCAROL", "Approve", "change_approve", CR_NORMAL, channel="D_UCAROL")

    feed.banner("3. The timeline: the bot's clock jumps to each due moment (T-24h, T-1h, T-0, T+15m)")
    await world.advance_to(window_start - timedelta(hours=24))
    await world.advance_to(window_start - timedelta(hours=1))
    await world.advance_to(window_start)
    await world.click("UALICE", "Start", "change_start", CR_NORMAL, channel="D_UALICE")
    await world.advance_to(window_start + timedelta(minutes=15))

    feed.banner("4. Implementation done, monitored for an hour, closed")
    completed = window_start + timedelta(minutes=40)
    await world.advance_to(completed)
    await world.click("UALICE", "Completed", "change_complete", CR_NORMAL, channel="D_UALICE")
    await world.advance_to(world.clock.now() + timedelta(hours=1))
    await world.click("UALICE", "Close the change", "change_close", CR_NORMAL, channel="D_UALICE")

    feed.banner("5. An emergency: fix first, the on-call is told, a manager post-approves")
    declared = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    await world.advance_to(declared)
    await world.command("UALICE", "emergency", channel="CINCIDENTS")
    emergency = emergency_form_state(
        title="Roll back checkout 4.2",
        severity="P1",
        services=["api-server"],
        broken="Checkout returns 500s since the 4.2 deploy",
        fix="Roll back to 4.1",
        rollback="Redeploy 4.2 behind a flag",
        incident="https://emulated.slack.com/archives/CINCIDENTS",
    )
    await world.submit(
        "UALICE", "change_emergency", emergency, what="fills in the emergency form and clicks [ Declare ]"
    )
    await world.tick()  # the on-call hand-off runs through the outbox
    await world.advance_to(declared + timedelta(minutes=30))
    await world.click("UALICE", "Completed", "change_complete", CR_EMERGENCY, channel="D_UALICE")
    await world.advance_to(declared + timedelta(minutes=45))
    await world.click("UERIN", "Post-approve", "change_post_approve", CR_EMERGENCY, channel="CCHANGES")

    feed.banner("6. Meanwhile carol plans a high-risk change for Friday; next morning's digest")
    await world.advance_to(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))
    friday = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    await world.submit(
        "UCAROL",
        "change_new",
        change_form_state(
            title="Fail over the primary database",
            category="normal",
            impact="high",
            likelihood="medium",
            services=["database"],
            starts_at=int(friday.timestamp()),
            ends_at=int((friday + timedelta(hours=1)).timestamp()),
            description="Promote the replica in the second zone, then retire the old primary.",
            rollback_plan="Fail back to the old primary.",
        ),
        what="files a change: fail over the primary database (high impact, Fri 14:00)",
    )
    await world.advance_to(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    await world.digest()

    for change_id in (CR_NORMAL, CR_EMERGENCY):
        change = await world.bot.context.service.get_change(change_id=change_id)
        print_audit(change, world.names, world.feed.out)


def print_audit(change: Change, names: Names, out: TextIO) -> None:
    print(file=out)
    print(f"━━ Audit trail of {change.id} · {change.draft.title} · now {change.status.value}", file=out)
    for entry in change.audit:
        print("  " + audit_line(entry, names), file=out, flush=True)


def audit_line(entry: AuditEntry, names: Names) -> str:
    when = entry.at.astimezone(names.zone).strftime("%a %d %b %H:%M")
    actor = names.user(entry.actor) if entry.actor[:1] in ("U", "W") else entry.actor
    details = []
    for key, value in entry.details.items():
        if key == "team_id" or value in (None, "", [], {}):
            continue
        if key == "users" and isinstance(value, list):
            value = ", ".join(names.user(str(u)) for u in value)
        elif key == "steps" and isinstance(value, list):
            value = ", ".join(f"{s.get('role')} ×{s.get('count')}" for s in value if isinstance(s, dict))
        text = str(value)
        details.append(f"{key}: {text if len(text) <= 70 else text[:69] + '…'}")
    tail = f"  ({'; '.join(details)})" if details else ""
    return f"{when}  {actor:<10} {entry.action.value.replace('_', ' ')}{tail}"


# --------------------------------------------------------------------------- entry points
def _introduce(world: DemoWorld, out: TextIO) -> None:
    people = ", ".join(f"@{name} ({role})" for name, role in PEOPLE.values())
    print("changebot demo: the whole change process, without a Slack workspace.", file=out)
    print(f"  Slack emulator  {world.emulator.base_url}  (in memory, this process)", file=out)
    print(f"  bot             {world.bot_url}  (SQLite in {world.workdir})", file=out)
    print(f"  people          {people}", file=out)
    print("  Nothing leaves this machine; the bot's clock is simulated, starting Mon 23 Nov 2026.", file=out)
    print(
        "  Each line below is what that person would see in Slack; » marks what people do.",
        file=out,
        flush=True,
    )


async def run_demo(*, interactive: bool, state_path: Path | None, out: TextIO) -> int:
    world = await DemoWorld.open(out)
    try:
        _introduce(world, out)
        await play(world)
        if interactive:
            await _stay_interactive(world, state_path or default_state_path(), out)
        else:
            print(
                "\nDone: the demo's workspace and database are gone. `changebot demo --interactive`", file=out
            )
            print("keeps them running so you can send your own commands.", file=out, flush=True)
    finally:
        await world.close()
    return 0


async def _stay_interactive(world: DemoWorld, state_path: Path, out: TextIO) -> None:
    offset = world.clock.go_live()
    write_state(
        state_path,
        DemoState(
            bot_url=world.bot_url,
            emulator_url=world.emulator.base_url,
            signing_secret=world.signing_secret,
            clock_offset_seconds=offset.total_seconds(),
            pid=os.getpid(),
            users=dict(world.names.users),
            channels=dict(world.names.channels),
        ),
    )
    world.echo_requests = True
    world.bot.scheduler.start()  # from here on the real scheduler ticks, in (shifted) real time
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lines = [
        "",
        "━━ Interactive: the emulator and the bot keep running (Ctrl-C stops them)",
        f"  bot             {world.bot_url}",
        f"  Slack emulator  {world.emulator.base_url}",
        f"  signing secret  {world.signing_secret}",
        f"  state file      {state_path}  (what `changebot slack send` reads)",
        "  People: " + ", ".join(f"{uid} ({name})" for uid, (name, _role) in PEOPLE.items()),
        "  Try, in another terminal:",
        "    changebot slack send '/change help' --as UALICE",
        f"    changebot slack send '/change show {CR_NORMAL}' --as UBOB",
        "    changebot slack send '/change new' --as UALICE",
        f"    changebot slack send --click change_approve {CR_NEXT} --as UERIN",
        f"Ready: changebot demo is listening on {world.bot_url}",
    ]
    for line in lines:
        print(line, file=out, flush=True)
    try:
        while not stop.is_set():
            world.feed.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        state_path.unlink(missing_ok=True)
        print("Stopped.", file=out, flush=True)


def demo_main(*, interactive: bool, state_path: str | None, out: TextIO = sys.stdout) -> int:
    """The CLI's entry: quiet logs (the printed feed is the output), then the demo."""
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("apscheduler", "alembic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="replace")
    return asyncio.run(
        run_demo(interactive=interactive, state_path=Path(state_path) if state_path else None, out=out)
    )
