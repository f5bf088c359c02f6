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
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from domain.model import AuditEntry, Change
from tooling.demo_chase import approvals_chased
from tooling.demo_edit import CR_EDITED, changes_requested_then_approved
from tooling.demo_pipeline import CR_PIPELINE, pipeline_at_the_gate
from tooling.demo_policy import PEOPLE
from tooling.demo_world import START, DemoWorld
from tooling.render import Names
from tooling.slack_payloads import change_form_state, emergency_form_state
from tooling.slack_send import DemoState, default_state_path, write_state

CR_NORMAL = "CR-2026-0001"
CR_EMERGENCY = "CR-2026-0002"
CR_NEXT = "CR-2026-0003"
WINDOW_START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # the normal change's window: Wednesday 10:00 London


# --------------------------------------------------------------------------- the script
# The world (emulator, bot, and the driver playing Slack and the scheduler) is in
# tooling/demo_world.py; here is the story it plays, and the entry points.
async def play(world: DemoWorld) -> None:
    """The story, scene by scene, then the audit trails it left."""
    for scene in SCENES:
        await scene(world)
    for change_id in (CR_NORMAL, CR_EMERGENCY, CR_PIPELINE, CR_EDITED):
        change = await world.bot.context.service.get_change(change_id=change_id)
        print_audit(change, world.names, world.feed.out)


async def _file_a_normal_change(world: DemoWorld) -> None:
    world.feed.banner("1. bob files a normal change")
    await world.command("UBOB", "new")
    form = change_form_state(
        title="Upgrade the API gateway to 2.4",
        category="normal",
        impact="medium",
        likelihood="medium",
        services=["api-server"],
        implementer="UALICE",
        starts_at=int(WINDOW_START.timestamp()),
        ends_at=int((WINDOW_START + timedelta(hours=1)).timestamp()),
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


async def _approve(world: DemoWorld) -> None:
    world.feed.banner("2. Approval: not by yourself, not by the wrong role, then by a tech lead")
    await world.advance_to(START + timedelta(minutes=5))
    await world.click("UBOB", "Approve", "change_approve", CR_NORMAL, channel="CCHANGES")
    await world.click("UERIN", "Approve", "change_approve", CR_NORMAL, channel="CCHANGES")
    await world.advance_to(START + timedelta(minutes=20))
    await world.click("UCAROL", "Approve", "change_approve", CR_NORMAL, channel="D_UCAROL")


async def _follow_the_timeline(world: DemoWorld) -> None:
    world.feed.banner(
        "3. The timeline: the bot's clock jumps to each due moment (T-24h, T-1h, T-15m, T-0, T+15m, T+30m)"
    )
    await world.advance_to(WINDOW_START - timedelta(hours=24))
    await world.advance_to(WINDOW_START - timedelta(hours=1))
    await world.advance_to(WINDOW_START - timedelta(minutes=15))
    await world.advance_to(WINDOW_START)
    await world.click("UALICE", "Start", "change_start", CR_NORMAL, channel="D_UALICE")
    await world.advance_to(WINDOW_START + timedelta(minutes=15))
    await world.advance_to(WINDOW_START + timedelta(minutes=30))


async def _complete_and_close(world: DemoWorld) -> None:
    world.feed.banner("4. Implementation done, monitored for an hour, closed")
    completed = WINDOW_START + timedelta(minutes=40)
    await world.advance_to(completed)
    await world.click("UALICE", "Completed", "change_complete", CR_NORMAL, channel="D_UALICE")
    await world.advance_to(world.clock.now() + timedelta(hours=1))
    await world.click("UALICE", "Close the change", "change_close", CR_NORMAL, channel="D_UALICE")


async def _declare_an_emergency(world: DemoWorld) -> None:
    world.feed.banner("5. An emergency: fix first, the on-call is told, a manager post-approves")
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


async def _plan_ahead_and_digest(world: DemoWorld) -> None:
    world.feed.banner("6. Meanwhile carol plans a high-risk change for Friday; next morning's digest")
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
            test_plan="Fail over the staging database first; replication lag under a second.",
        ),
        what="files a change: fail over the primary database (high impact, Fri 14:00)",
    )
    await world.advance_to(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    await world.digest()


# The story, in order; each scene prints its own banner.
SCENES: tuple[Callable[[DemoWorld], Awaitable[None]], ...] = (
    _file_a_normal_change,
    _approve,
    _follow_the_timeline,
    _complete_and_close,
    _declare_an_emergency,
    _plan_ahead_and_digest,
    pipeline_at_the_gate,  # tooling/demo_pipeline.py
    changes_requested_then_approved,  # tooling/demo_edit.py
    approvals_chased,  # tooling/demo_chase.py
)


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
