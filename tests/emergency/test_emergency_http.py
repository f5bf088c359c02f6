"""Emergency changes end to end: declaring, the on-call, the 24 h post-approval chase."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.enums import Status
from domain.model import PostState
from tests.support.flows import (
    CR,
    declare,
    emergency_state,
    rendered,
)
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import interaction_body


async def test_emergency_command_prefills_incident_context_in_the_incidents_channel(harness: Harness) -> None:
    from tests.support.slack_requests import command_body

    body = command_body("emergency", user="UDEV", channel="CINCIDENTS", trigger_id="t-inc")
    response = await harness.post(
        body.replace(b"team_domain=emulated", b"team_domain=acme"),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status == 200
    await harness.settle()
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == "change_emergency"
    incident = next(b for b in view["blocks"] if b.get("block_id") == "incident")
    assert incident["element"]["initial_value"] == "https://acme.slack.com/archives/CINCIDENTS"
    await harness.command("emergency", user="UDEV")  # from elsewhere: nothing prefilled
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    incident = next(b for b in view["blocks"] if b.get("block_id") == "incident")
    assert "initial_value" not in incident["element"]


async def test_message_shortcut_declares_from_an_incident_message(harness: Harness) -> None:
    payload = {
        "type": "message_action",
        "callback_id": "declare_emergency",
        "trigger_id": "t-sc",
        "team": {"id": "T0001", "domain": "acme"},
        "user": {"id": "UDEV"},
        "channel": {"id": "CINCIDENTS", "name": "incidents"},
        "message": {"ts": "1700000123.000400", "text": "Checkout is down <!channel>", "user": "UOPS"},
        "response_url": "http://127.0.0.1:9/x",
        "message_ts": "1700000123.000400",
    }
    response = await harness.post(interaction_body(payload), content_type="application/x-www-form-urlencoded")
    assert response.status == 200
    await harness.settle()
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    link = "https://acme.slack.com/archives/CINCIDENTS/p1700000123000400"
    assert blocks["incident"]["element"]["initial_value"] == link
    assert (
        blocks["broken"]["element"]["initial_value"] == "Checkout is down <!channel>"
    )  # plain text: no ping
    assert json.loads(view["private_metadata"])["source_link"] == link
    elsewhere = {**payload, "channel": {"id": "CRANDOM"}, "trigger_id": "t-sc2"}
    await harness.post(interaction_body(elsewhere), content_type="application/x-www-form-urlencoded")
    await harness.settle()
    assert len(harness.slack.calls_to("views.open")) == 1
    assert "<#CINCIDENTS>" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]


async def test_declaring_announces_hands_to_on_call_and_lets_the_fixer_start(harness: Harness) -> None:
    started = harness.clock.now()
    assert await declare(harness) == {}
    change = await harness.change(CR)
    assert change.draft.category.value == "emergency" and change.status is Status.APPROVED
    assert change.draft.severity == "P1" and change.draft.incident_ref == "INC-42"
    assert change.implementer == "UDEV" and change.post_state is PostState.PENDING
    assert change.post_due_at == started + timedelta(hours=24)
    # announced in both channels
    assert any(c.params.get("blocks") for c in harness.posts_to("CCHANGES"))
    incident_posts = harness.posts_to("CINCIDENTS")
    assert incident_posts and "Severity" in rendered(incident_posts[0])
    # PagerDuty is not configured here: the fallback responder gets it, and is told why
    fallback_dm = harness.posts_to("UFALLBACK")
    assert fallback_dm and "PagerDuty is not configured" in rendered(fallback_dm[0])
    mention = [c for c in incident_posts if "On call for" in rendered(c)]
    assert mention and "<@UFALLBACK>" in rendered(mention[0]) and mention[0].params.get("thread_ts")
    # the fixer can start at once: the T-0 notice carries the buttons
    assert "change_start" in json.dumps([c.params.get("blocks") for c in harness.posts_to("UDEV")])
    await harness.click("change_start", CR, user="UDEV")
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    audit = [e.action.value for e in (await harness.change(CR)).audit]
    assert audit[:4] == ["submitted", "emergency_declared", "auto_approved", "on_call_resolved"]


async def test_bad_declaration_is_answered_inline_and_stores_nothing(harness: Harness) -> None:
    answer = await harness.submit(
        "change_emergency", emergency_state(fix=None, severity="P9", services=["nope"]), user="UDEV"
    )
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"fix", "severity", "services"}
    assert not harness.slack.calls_to("chat.postMessage")
    with pytest.raises(Exception, match="does not exist"):
        await harness.change(CR)


async def test_the_24_hour_chase_reminds_escalates_and_accepts_a_late_post_approval(harness: Harness) -> None:
    declared = harness.clock.now()
    await declare(harness)
    for hours in (4, 8, 12, 16, 20):
        await harness.advance_to(declared + timedelta(hours=hours))
        for manager in ("UMGR1", "UMGR2"):
            reminder = harness.posts_to(manager)[-1]
            assert "needs post-approval" in rendered(reminder) and "change_post_approve" in rendered(reminder)
    assert all(len(harness.posts_to(m)) == 1 + 5 for m in ("UMGR1", "UMGR2"))  # the card, then 5 reminders
    thread = [
        c for c in harness.posts_to("CCHANGES") if c.params.get("thread_ts") and "Reminder" in rendered(c)
    ]
    assert len(thread) == 5
    assert not harness.posts_to("UCTO")

    await harness.advance_to(declared + timedelta(hours=24))
    overdue = await harness.change(CR)
    assert overdue.post_state is PostState.OVERDUE
    assert "OVERDUE" in rendered(harness.posts_to("UCTO")[-1])
    top_level = [
        c for c in harness.posts_to("CCHANGES") if not c.params.get("thread_ts") and "OVERDUE" in rendered(c)
    ]
    assert top_level
    card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"][-1]
    assert "post-approval OVERDUE" in rendered(card)
    calendar = json.dumps((await harness.command("calendar", user="UCTO"))["blocks"])
    assert "post-approval overdue" in calendar and CR in calendar.split("post-approval overdue")[1]

    await harness.click("change_post_approve", CR, user="UMGR1")
    done = await harness.change(CR)
    assert done.post_state is PostState.APPROVED
    late = [e for e in done.audit if e.action.value == "post_approval_recorded"]
    assert late[0].details["late"] is True and late[0].actor == "UMGR1"
    assert [e.action.value for e in done.audit].count("post_approval_overdue") == 1
    before = len(harness.slack.calls_to("chat.postMessage"))
    await harness.advance_to(declared + timedelta(days=3))
    assert (
        len([c for c in harness.slack.calls_to("chat.postMessage")[before:] if "Reminder" in rendered(c)])
        == 0
    )


async def test_post_approval_in_time_stops_the_chase(harness: Harness) -> None:
    declared = harness.clock.now()
    await declare(harness, user="UMGR2")  # a manager declares: cannot post-approve it themselves
    await harness.advance_to(declared + timedelta(hours=4))
    assert not harness.posts_to("UMGR2") or all(
        "needs post-approval" not in rendered(c) for c in harness.posts_to("UMGR2")
    )
    await harness.click("change_post_approve", CR, user="UMGR2")
    assert "you requested this change" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_post_approve", CR, user="ULEAD1")
    assert "not an approver" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_post_approve", CR, user="UMGR1")
    change = await harness.change(CR)
    assert change.post_state is PostState.APPROVED
    assert any("post-approved" in rendered(c) for c in harness.posts_to("UMGR2"))  # the declarer is told
    await harness.click("change_post_approve", CR, user="UMGR1")
    assert "no longer waiting" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.advance_to(declared + timedelta(hours=25))
    change = await harness.change(CR)
    assert change.post_state is PostState.APPROVED
    skipped = [e.details["notice"] for e in change.audit if e.action.value == "notice_skipped"]
    assert "post_deadline" in skipped and "post_reminder_2" in skipped
    assert not harness.posts_to("UCTO")


async def test_post_rejection_asks_for_a_review(harness: Harness) -> None:
    await declare(harness)
    await harness.click("change_post_reject", CR, user="UMGR1")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == "change_reject_reason"
    answer = await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"value": "No incident ticket"}}},
        user="UMGR1",
        private_metadata=view["private_metadata"],
    )
    assert answer == {}
    change = await harness.change(CR)
    assert change.post_state is PostState.REJECTED and change.status is Status.APPROVED
    assert change.post_approvals[0].reason == "No incident ticket"
    assert any("post-incident review is required" in rendered(c) for c in harness.posts_to("UDEV"))


GO_AHEAD_POLICY = TEST_POLICY.replace(
    "emergency:\n  fallback: [UFALLBACK]",
    "emergency:\n  fallback: [UFALLBACK, UFALLBACK2]\n  go_ahead: on_call",
)


@pytest.mark.parametrize("policy_text", [GO_AHEAD_POLICY])
async def test_go_ahead_mode_waits_for_the_on_call(harness: Harness) -> None:
    await declare(harness)
    change = await harness.change(CR)
    assert change.status is Status.PENDING_APPROVAL
    assert change.steps[0].role == "on_call" and change.steps[0].members == ("UFALLBACK", "UFALLBACK2")
    card = harness.posts_to("UFALLBACK")[0]
    assert "change_approve" in rendered(card) and "fallback" in rendered(card)
    await harness.click("change_start", CR, user="UDEV")
    assert "cannot start" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_approve", CR, user="UDEV")
    assert "you requested this change" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_approve", CR, user="UFALLBACK2")
    approved = await harness.change(CR)
    assert approved.status is Status.APPROVED and approved.post_state is PostState.PENDING
    await harness.tick()
    assert "change_start" in json.dumps([c.params.get("blocks") for c in harness.posts_to("UDEV")])


@pytest.mark.parametrize("policy_text", [GO_AHEAD_POLICY])
async def test_go_ahead_refused_needs_no_post_approval(harness: Harness) -> None:
    declared = harness.clock.now()
    await declare(harness)
    await harness.click("change_reject", CR, user="UFALLBACK")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"value": "Wait for the vendor"}}},
        user="UFALLBACK",
        private_metadata=meta,
    )
    change = await harness.change(CR)
    assert change.status is Status.REJECTED and change.post_state is PostState.NOT_NEEDED
    await harness.advance_to(declared + timedelta(hours=25))
    [card] = harness.posts_to("UMGR1")  # the card at declaration; no reminder followed
    assert "post-approval not needed" in rendered(harness.slack.calls_to("chat.update")[-1])
    assert "needs post-approval" not in rendered(card) and not harness.posts_to("UCTO")
