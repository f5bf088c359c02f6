"""Hostile user text through a whole change lifecycle: nothing a user typed reaches Slack as markup.

Every free-text field carries the same payload; afterwards every recorded Slack call (the
top-level `text` that notifications use, blocks, views, App Home, ephemeral replies) and
every slash-command reply is scanned. The bot's own mentions of real users and its
`<!date^…>` tokens are legitimate, so the payload uses ids and markers the bot never emits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.enums import Status
from domain.model import PostState
from modals.text import clip_md, md, mention
from tests.support.harness import Harness
from tests.support.paths import ROOT
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import change_form_state

HOSTILE = "<!channel> <!here> <@U123> <#C123> <https://evil.example|ZZFORGED> &lt;ZZPRE *b*"
RAW = ("<!channel", "<!here", "<@U123", "<#C123", "<https://evil", "ZZFORGED>")
WINDOW_POLICY = (
    TEST_POLICY + 'windows:\n  normal:\n    - {days: [tue, wed, thu], start: "10:00", end: "16:00"}\n'
)
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # outside the window: needs an exception


@pytest.fixture
def policy_text() -> str:
    return WINDOW_POLICY


def parsed_texts(value: Any, *, mrkdwn: bool = False) -> Iterator[str]:
    """Every string Slack parses as mrkdwn: `text` objects of type mrkdwn and bare section texts."""
    if isinstance(value, list):
        for item in value:
            yield from parsed_texts(item, mrkdwn=mrkdwn)
    elif isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for key, item in value.items():
            if key == "text" and isinstance(item, str) and value.get("type") != "plain_text":
                yield item
            elif key != "text" or not isinstance(item, str):
                yield from parsed_texts(item)


def leaks(texts: list[str]) -> list[str]:
    """Raw hostile markup, or pre-escaped text that would render as `<`."""
    bad = []
    for text in texts:
        if any(raw in text for raw in RAW) or text.count("ZZPRE") != text.count("&amp;lt;ZZPRE"):
            bad.append(text)
    return bad


def every_parsed_text(harness: Harness, replies: list[Any]) -> list[str]:
    texts: list[str] = []
    for call in harness.slack.calls:
        params = dict(call.params)
        if isinstance(params.get("text"), str):
            texts.append(params["text"])  # the notification text, always mrkdwn-parsed
        for key in ("blocks", "attachments", "view"):
            raw = params.get(key)
            if isinstance(raw, str):
                raw = json.loads(raw)
            texts += parsed_texts(raw)
    for reply in replies:
        texts += parsed_texts(reply)
    for bodies in harness.slack.responses.values():
        texts += parsed_texts(bodies)
    return texts


async def file(harness: Harness, start: datetime, **extra: Any) -> None:
    fields = harness.form(
        title=HOSTILE,
        description=HOSTILE,
        justification=HOSTILE,
        implementation_plan=HOSTILE,
        rollback_plan=HOSTILE,
        test_plan=HOSTILE,
        success_criteria=HOSTILE,
        dependencies=HOSTILE,
        rollback_triggers=HOSTILE,
        starts_at=int(start.timestamp()),
        ends_at=int(start.timestamp()) + 3600,
        **extra,
    )
    values = change_form_state(**fields)
    if start == MONDAY_NOON:
        values["exception"] = {
            "exception": {"type": "checkboxes", "selected_options": [{"value": "requested"}]}
        }
        values["exception_reason"] = {"exception_reason": {"type": "plain_text_input", "value": HOSTILE}}
    from modals.intake import new_change_modal

    blocks = new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]
    assert await harness.submit("change_new", values, user="UREQ", view_blocks=blocks) == {}


async def reason(harness: Harness, callback_id: str, block: str, *, user: str) -> None:
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    values = {block: {block: {"type": "plain_text_input", "value": HOSTILE}}}
    assert await harness.submit(callback_id, values, user=user, private_metadata=meta) == {}


async def play_lifecycle(harness: Harness) -> list[Any]:
    """Returns the slash-command replies (ephemeral, in the HTTP answer)."""
    replies: list[Any] = []
    cr1, cr2, cr3, cr4 = (f"CR-2026-000{n}" for n in range(1, 5))
    await file(harness, MONDAY_NOON)  # CR-1: normal, medium, with an exception request
    await file(harness, MONDAY_NOON + timedelta(days=1))  # CR-2: rejected
    await file(harness, MONDAY_NOON + timedelta(days=2))  # CR-3: cancelled
    await harness.click("change_approve", cr1, user="ULEAD1")
    await harness.click("change_approve", cr1, user="UMGR1")
    assert (await harness.change(cr1)).status is Status.APPROVED
    await harness.click("change_reject", cr2, user="ULEAD1")
    await reason(harness, "change_reject_reason", "reason", user="ULEAD1")
    replies.append(await harness.command(f"cancel {cr3} {HOSTILE}", user="UREQ"))
    # unknown CRs and bad arguments are quoted back
    await harness.click("change_approve", HOSTILE, user="ULEAD1")
    await harness.click("change_reject", HOSTILE, user="ULEAD1")
    await harness.click("change_start", HOSTILE, user="UREQ")
    await harness.click("change_fail", HOSTILE, user="UREQ")
    await harness.click("change_review", HOSTILE, user="UREQ")
    await harness.click("change_post_approve", HOSTILE, user="UCTO")
    for text in (HOSTILE, f"show {HOSTILE}", f"list {HOSTILE}", f"calendar {HOSTILE}", f"report {HOSTILE}"):
        replies.append(await harness.command(text, user="UREQ"))
    replies.append(await harness.command(f"cancel {HOSTILE}", user="UREQ"))
    replies.append(await harness.command(f"incident {cr1} {HOSTILE}", user="UREQ"))  # not finished yet
    # the timeline: notices fired by the clock, then start and fail with notes
    for before in (timedelta(hours=24), timedelta(hours=1), timedelta(0)):
        await harness.advance_to(MONDAY_NOON - before)
    await harness.click("change_start", cr1, user="UREQ")
    await harness.click("change_fail", cr1, user="UREQ")
    await reason(harness, "change_progress_notes", "notes", user="UREQ")
    await harness.click("change_review", cr1, user="UREQ", channel="D_UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    review = {"result": {"result": {"type": "static_select", "selected_option": {"value": "Failed"}}}}
    for key in ("issues", "improve", "action_items"):
        review[key] = {key: {"type": "plain_text_input", "value": HOSTILE}}
    assert await harness.submit("change_review_submit", review, user="UREQ", private_metadata=meta) == {}
    replies.append(await harness.command(f"incident {cr1} {HOSTILE}", user="UREQ"))
    # a freeze with a reason, an emergency while it holds, its post-approval refused
    replies.append(await harness.command(f"freeze start {HOSTILE}", user="UMGR1"))
    emergency = {
        k: {k: {"type": "plain_text_input", "value": HOSTILE}}
        for k in ("title", "broken", "fix", "rollback", "incident")
    }
    emergency["severity"] = {"severity": {"type": "static_select", "selected_option": {"value": "P1"}}}
    emergency["services"] = {
        "services": {"type": "multi_static_select", "selected_options": [{"value": "api-server"}]}
    }
    assert await harness.submit("change_emergency", emergency, user="UDEV") == {}
    await harness.tick()
    await harness.click("change_post_reject", cr4, user="UMGR1")
    await reason(harness, "change_reject_reason", "reason", user="UMGR1")
    assert (await harness.change(cr4)).post_state is PostState.REJECTED
    # everything that lists changes: calendar, digest, App Home, show, list
    for text in (f"show {cr1}", f"show {cr4}", "list mine", "list upcoming", "calendar week"):
        replies.append(await harness.command(text, user="UREQ"))
    harness.clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert await harness.bot.context.service.run_digest()
    for user in ("UREQ", "UDEV", "ULEAD1", "UMGR1"):
        await harness.event({"type": "app_home_opened", "user": user, "tab": "home"}, event_id=f"Ev{user}")
    replies.append(await harness.command("freeze end", user="UMGR1"))
    return replies


async def test_hostile_text_never_reaches_slack_as_markup(harness: Harness) -> None:
    replies = await play_lifecycle(harness)
    texts = every_parsed_text(harness, replies)
    assert leaks(texts) == []
    shown = "\n".join(texts)
    # the payload did reach Slack, escaped, in every kind of call: cards, notices, DMs, views, replies
    assert "&lt;!channel&gt;" in shown and "&amp;lt;ZZPRE" in shown
    methods = {c.method for c in harness.slack.calls}
    assert {"chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish", "views.open"} <= methods
    notified = [
        c.params["text"] for c in harness.slack.calls if c.method in ("chat.postMessage", "chat.update")
    ]
    assert any("&lt;!channel&gt;" in t for t in notified)


async def test_the_gateway_escapes_a_message_text_that_is_not_mrkdwn(harness: Harness) -> None:
    """The runtime backstop behind the types: a plain str (mypy would flag the call) is escaped."""
    gateway = harness.bot.context.gateway
    await gateway.ephemeral(channel="CCHANGES", user="UREQ", text="Hi <!channel>")  # type: ignore[arg-type]
    await gateway.ephemeral(channel="CCHANGES", user="UREQ", text=md("Hi {}", mention("UREQ")))
    await harness.settle()
    sent = [c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral")]
    assert sent == ["Hi &lt;!channel&gt;", "Hi <@UREQ>"]


def test_md_escapes_parts_and_clipping_never_cuts_a_token_or_entity() -> None:
    text = md("*{}* by {}: {}", "CR-1", mention("U1"), "<!here> & *x*")
    assert text == "*CR-1* by <@U1>: &lt;!here&gt; &amp; *x*"
    assert md("{}", text) == text  # Mrkdwn parts are not escaped twice
    assert clip_md(md("a {}", mention("U123456")), 6) == "a…"
    assert clip_md(md("a {}", "&"), 5) == "a…"


def test_mypy_refuses_a_raw_str_where_message_text_goes(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from bot.gateway import SlackGateway
            from modals.text import md, section


            async def reply(gateway: SlackGateway, title: str) -> None:
                await gateway.ephemeral(channel="C1", user="U1", text=f"Filed {title}")
                section(title)
                section(md("Filed {}", title))
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2 and all('expected "Mrkdwn"' in e for e in errors), result.stdout
