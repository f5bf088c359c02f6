"""`changebot demo`, `changebot demo --interactive` with `changebot slack send`, and the
Block Kit → text renderer they print with."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.http import signature_problem
from modals.cards import help_blocks
from tooling.demo_world import DemoClock
from tooling.render import Names, blocks_to_text, message_to_text, mrkdwn_to_text, view_to_text
from tooling.slack_payloads import command_body, sign, trigger_id, user_of_trigger

CHANGEBOT = str(Path(sys.executable).with_name("changebot"))


def demo_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment; a PagerDuty token that the demo must ignore (no network)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "CHANGEBOT_", "DATABASE_", "PAGERDUTY_"))
    }
    env.update(
        XDG_RUNTIME_DIR=str(tmp_path),
        PAGERDUTY_API_TOKEN="must-not-be-used",
        PAGERDUTY_ROUTING_KEY="must-not-be-used",
        PYTHONUNBUFFERED="1",
    )
    return env


# ------------------------------------------------------------------ the scripted demo


def test_demo_plays_the_whole_process_in_under_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [CHANGEBOT, "demo"], cwd=tmp_path, env=demo_env(tmp_path), capture_output=True, text=True, timeout=90
    )
    elapsed = time.monotonic() - started
    out = result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
    assert "Traceback" not in result.stderr, result.stderr
    steps = [
        # the change is filed: the form, then the card in the channel and the approver's DM
        "modal opens on @bob's screen",
        "#changes\n           == CR-2026-0001 · Upgrade the API gateway to 2.4 ==",
        "tell <!channel> only if it goes wrong",  # escaped user text, shown as text
        "[ Approve ] [ Request changes ] [ Reject ]\n           [ Edit ]",  # Edit: the channel's copy
        "@carol's DM\n           == CR-2026-0001 · Upgrade the API gateway to 2.4 ==",
        "[ Approve ] [ Request changes ] [ Reject ]",
        # nobody approves their own change, nor the wrong role
        "#changes, only @bob sees this\n           Not recorded: you requested this change",
        "#changes, only @erin sees this\n           Not recorded: you are not an approver",
        "+ Status: :white_check_mark: Approved",  # every copy of the card is updated
        "@carol approved your change *CR-2026-0001*",
        # the timeline
        "Tue 10:00  #changes › thread of “CR-2026-0001 · Upgrade the API gateway to 2.4”",
        "T-24h · *CR-2026-0001*",
        "Tue 10:00  #support\n           *[SCHEDULED MAINTENANCE]* *CR-2026-0001*",  # document 001's template
        "*Contact:* implementer @alice · requester @bob",
        "Wed 09:00  #changes › thread of “CR-2026-0001 · Upgrade the API gateway to 2.4”, @alice's DM",
        "T-1h · *CR-2026-0001*",
        "Wed 09:45  @alice's DM\n           T-15m · *CR-2026-0001*",
        "T-0 · *CR-2026-0001*",
        "» @alice clicks [ Start ]",
        "T+15m · *CR-2026-0001*",
        "T+30m · *CR-2026-0001*",
        "@alice :tada: completed *CR-2026-0001*",
        "Monitoring done · *CR-2026-0001*",
        "@alice :lock: closed *CR-2026-0001*",
        # the emergency, the on-call (fallback: no PagerDuty) and the post-approval
        "» @alice types /change emergency in #incidents",
        "== CR-2026-0002 · Roll back checkout 4.2 ==",
        "@grace's DM",
        ":pager: On call for *CR-2026-0002*: @grace.",
        "Sent to the fallback responders because PagerDuty is not configured",
        "@erin post-approved emergency *CR-2026-0002*",
        # the digest, then the audit trails
        "Thu 09:00  #changes\n           == Change calendar for Thu 26 Nov ==",
        # a pipeline files a change through the REST API, waits at its gate, reports its deploy
        "━━ 7. A deploy pipeline files a change through the REST API",
        "HTTP 201 · CR-2026-0004 is pending approval",
        "HTTP 200 · wait: CR-2026-0004 is waiting for approval: Tech lead 0/1",
        "» @carol clicks [ Approve ]",
        "HTTP 200 · go: CR-2026-0004 is approved",
        "`api:deploy-pipeline` :construction: started *CR-2026-0004*",
        "HTTP 200 · CR-2026-0004 is completed",
        # an approver asks for changes; the requester edits the change and resubmits it
        "━━ 8. bob asks for changes before approving",
        "» @bob clicks [ Request changes ]",
        ":memo: @bob asks for changes to *CR-2026-0005*",
        "» @alice clicks [ Edit and resubmit ]",
        "@alice edited and resubmitted *CR-2026-0005*",
        "@bob approved your change *CR-2026-0005*",
        # the database failover waits for approval: its approvers are reminded half-way to the deadline
        "━━ 9. Nobody has approved the database failover yet",
        "Reminder: *CR-2026-0003* Fail over the primary database waits for your approval",
        "━━ Audit trail of CR-2026-0001",
        "@bob       decision refused  (decision: approve; refusal: own_request)",
        "@carol     approval recorded",
        "@alice     closed",
        "━━ Audit trail of CR-2026-0002",
        "on call resolved  (users: @grace; source: fallback",
        "@erin      post approval recorded",
        "━━ Audit trail of CR-2026-0004",
        "gate answered  (service: kubernetes; decision: wait",
        "api:deploy-pipeline completed  (notes: Rolled out to 3 clusters.)",
        "━━ Audit trail of CR-2026-0005",
        "@bob       changes requested",
        "@alice     edited  (changes: ['Success criteria added']",
    ]
    position = 0
    for step in steps:
        found = out.find(step, position)
        assert found != -1, f"missing (after position {position}): {step!r}\n\n{out}"
        position = found
    assert "<@U" not in out and "<!date" not in out and "&lt;" not in out  # all rendered as text
    workdir = re.search(r"SQLite in (\S+)\)", out)
    assert workdir and not Path(workdir.group(1)).exists()  # cleaned up


# ------------------------------------------------------------------ interactive mode


class Lines:
    """Reads a child's stdout line by line, waiting for what a test expects."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.seen: list[str] = []

    async def until(self, needle: str, *, timeout: float) -> str:
        async def scan() -> str:
            while True:
                raw = await self.stream.readline()
                if not raw:
                    raise AssertionError(f"output ended before {needle!r}:\n" + "".join(self.seen[-80:]))
                line = raw.decode()
                self.seen.append(line)
                if needle in line:
                    return line

        return await asyncio.wait_for(scan(), timeout)


@pytest.fixture
async def interactive(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Lines]]:
    process = await asyncio.create_subprocess_exec(
        CHANGEBOT,
        "demo",
        "--interactive",
        cwd=tmp_path,
        env=demo_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        limit=1024 * 1024,
    )
    assert process.stdout is not None
    try:
        yield process, Lines(process.stdout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def slack_send(tmp_path: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        CHANGEBOT,
        "slack",
        "send",
        *args,
        cwd=tmp_path,
        env=demo_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_interactive_demo_answers_slack_send_until_ctrl_c(
    tmp_path: Path, interactive: tuple[asyncio.subprocess.Process, Lines]
) -> None:
    process, lines = interactive
    ready = await lines.until("Ready: changebot demo is listening on", timeout=90)
    state = tmp_path / "changebot-demo.json"
    assert state.is_file() and state.stat().st_mode & 0o077 == 0  # holds the signing secret
    assert "http://127.0.0.1:" in ready

    code, out = await slack_send(tmp_path, "/change help", "--as", "U1")
    assert code == 0, out
    assert "@U1 → /change help" in out and "(only @U1 sees this)" in out
    assert "• `/change new`: file a change request" in out
    await lines.until("» @U1 types /change help", timeout=10)
    await lines.until("#changes, only @U1 sees this", timeout=10)
    await lines.until("/change new`: file a change request", timeout=10)

    code, out = await slack_send(tmp_path, "/change new", "--as", "UALICE")
    assert code == 0 and "Acknowledged" in out, out
    await lines.until("modal opens on @alice's screen", timeout=10)
    await lines.until("┌ New change request", timeout=10)

    code, out = await slack_send(tmp_path, "--click", "change_approve", "CR-2026-0003", "--as", "UERIN")
    assert code == 0, out
    await lines.until("» @erin clicks change_approve CR-2026-0003", timeout=10)
    await lines.until("@erin approved your change *CR-2026-0003*", timeout=10)

    process.send_signal(signal.SIGINT)
    await lines.until("Stopped.", timeout=30)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert not state.exists()


async def test_slack_send_without_a_running_demo_says_how_to_start_one(tmp_path: Path) -> None:
    code, out = await slack_send(tmp_path, "/change help", "--state", str(tmp_path / "none.json"))
    assert code == 1 and "changebot demo --interactive" in out
    code, out = await slack_send(tmp_path, "/change help", "--as", "bob")
    assert code == 1 and "Slack user id" in out


def test_demo_clock_goes_live_where_the_script_stopped() -> None:
    clock = DemoClock(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    later = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later
    clock.go_live()
    assert timedelta(0) <= clock.now() - later < timedelta(seconds=5)
    with pytest.raises(RuntimeError):
        clock.set(later)


def test_payloads_are_signed_the_way_the_bot_checks() -> None:
    body = command_body("help", user="U1", trigger=trigger_id("U1", 7))
    headers = sign(body, 1_800_000_000, "s3cret")
    assert (
        signature_problem(
            secret="s3cret",
            body=body,
            timestamp=headers["X-Slack-Request-Timestamp"],
            signature=headers["X-Slack-Signature"],
            now=1_800_000_010,
        )
        is None
    )
    assert user_of_trigger(trigger_id("UALICE", 3)) == "UALICE"
    assert user_of_trigger("12345.67890.abcdef") is None


# ------------------------------------------------------------------ Block Kit → text

NAMES = Names(
    users={"U1": "alice", "U2": "bob"},
    channels={"C1": "changes"},
    groups={"S1": "eng-managers"},
    zone=ZoneInfo("Europe/London"),
)


def test_mentions_channels_groups_and_broadcasts_become_names() -> None:
    text = "<@U1> asks <@U2|robert>, <@U9>, <#C1>, <#C7|ops>, <!subteam^S1> and <!subteam^S2|@sre>: <!here>"
    assert (
        mrkdwn_to_text(text, NAMES)
        == "@alice asks @robert, @U9, #changes, #ops, @eng-managers and @sre: @here"
    )


def test_dates_show_their_fallback_or_the_time_in_the_zone() -> None:
    stamp = int(datetime(2026, 7, 1, 9, 0, tzinfo=UTC).timestamp())
    assert mrkdwn_to_text(f"at <!date^{stamp}^{{date_short_pretty}} {{time}}|Wed 01 Jul 10:00 BST>") == (
        "at Wed 01 Jul 10:00 BST"
    )
    assert mrkdwn_to_text(f"<!date^{stamp}^{{time}}>", NAMES) == "Wed 01 Jul 2026 10:00 BST"


def test_escaped_user_text_is_shown_as_typed_and_never_as_a_mention() -> None:
    assert mrkdwn_to_text("&lt;!channel&gt; &amp; &lt;@U1&gt;", NAMES) == "<!channel> & <@U1>"
    assert mrkdwn_to_text("&amp;lt; stays literal") == "&lt; stays literal"
    assert mrkdwn_to_text("<https://x.example/a?b=1&amp;c=2|the runbook> and <https://y.example>") == (
        "the runbook (https://x.example/a?b=1&c=2) and https://y.example"
    )


def test_blocks_render_headers_fields_context_dividers_and_buttons() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "CR-2026-0001 · Upgrade"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Requester*\n<@U1>"},
                {"type": "mrkdwn", "text": "*Window*\n<!date^1|Wed 10:00> →\n<!date^2|Wed 11:00>"},
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Title &lt;!channel&gt;"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "action_id": "a"},
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Updated <!date^1|Mon 08:30> · version 2"}],
        },
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"},
                {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger"},
            ],
        },
        {"type": "video"},
    ]
    assert blocks_to_text(blocks, NAMES).splitlines() == [
        "== CR-2026-0001 · Upgrade ==",
        "Requester: @alice",
        "Window: Wed 10:00 → Wed 11:00",
        "Title <!channel>  [ Open ]",
        "────────────────────────",
        "› Updated Mon 08:30 · version 2",
        "[ Approve ] [ Reject ]",
        "[video block]",
    ]


def test_a_real_help_message_and_a_text_only_message() -> None:
    text = blocks_to_text(help_blocks("I don't know `/change fly`.", with_help=True))
    assert text.startswith("I don't know `/change fly`.\n*changebot: change requests in Slack*")
    assert "• `/change new`: file a change request" in text
    assert message_to_text("Hi <@U2>", None, NAMES) == "Hi @bob"
    assert message_to_text("ignored fallback", [{"type": "divider"}]) == "────────────────────────"


def test_modals_show_title_inputs_and_their_buttons() -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reject change"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "multiline": True},
            },
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {
                    "type": "plain_text_input",
                    "placeholder": {"type": "plain_text", "text": "Fix it"},
                },
            },
            {
                "type": "input",
                "optional": True,
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "initial_option": {"text": {"type": "plain_text", "text": "P1"}, "value": "P1"},
                },
            },
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Starts"},
                "element": {
                    "type": "datetimepicker",
                    "initial_date_time": int(datetime(2026, 7, 1, 9, 0, tzinfo=UTC).timestamp()),
                },
            },
        ],
    }
    assert view_to_text(view, NAMES).splitlines() == [
        "┌ Reject change",
        "│ Why?: [ … ]",
        "│ Title: [ ‹Fix it› ]",
        "│ Severity (optional): [ P1 ▾ ]",
        "│ Starts: [ Wed 01 Jul 2026 10:00 ]",
        "└ [ Cancel ] [ Reject ]",
    ]
