"""One emergency path: the CR form with category Emergency declares it as `/change
emergency` does (PagerDuty, the incidents channel, the post-approvers' cards at once); the
on-call's card carries only their buttons; the card says "post-approval pending"."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from domain.enums import Category, Status
from domain.model import AuditAction, PostState
from modals.intake import new_change_modal
from tests.support.flows import CR, declare, rendered
from tests.support.harness import Harness
from tests.support.pagerduty_fake import PD_POLICY, PagerDutyFake
from tests.support.slack_requests import change_form_state

# PagerDuty answers UALICE; the fix needs no go-ahead (the seed process).
FIX_FIRST = PD_POLICY.replace("  go_ahead: on_call\n", "")
HOSTILE = "<!channel> *bold* <https://evil.example|click> & `x` <@UCTO>"


@pytest.fixture
def settings_overrides(pagerduty: PagerDutyFake) -> dict[str, Any]:
    return {"pagerduty_api_token": "pd-token", "pagerduty_api_url": pagerduty.base_url}


async def file_emergency(harness: Harness, **overrides: Any) -> dict[str, Any]:
    emergency = {
        "category": "emergency",
        "impact": "high",
        "title": HOSTILE,
        "description": f"Checkout is down {HOSTILE}",
        "implementation_plan": "Roll back to 4.1",
    }
    fields = harness.form(**(emergency | overrides))
    blocks = new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]
    answer = await harness.submit("change_new", change_form_state(**fields), user="UDEV", view_blocks=blocks)
    await harness.tick()
    return answer


def mrkdwn(call: Any) -> list[str]:
    """The text Slack parses as mrkdwn: the notification text and every mrkdwn object."""
    found = [str(call.params.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node.get("text")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(call.params.get("blocks") or [])
    return found


def buttons(call: Any) -> set[str]:
    return {
        element["action_id"]
        for block in call.params.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    }


@pytest.mark.parametrize("policy_text", [FIX_FIRST])
async def test_the_form_with_category_emergency_goes_the_emergency_way(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    declared = harness.clock.now()
    assert await file_emergency(harness) == {}

    change = await harness.change(CR)
    assert (change.draft.category, change.status, change.post_state) == (
        Category.EMERGENCY,
        Status.APPROVED,
        PostState.PENDING,
    )
    assert change.draft.title == " ".join(HOSTILE.split()) and change.draft.severity == "P1"
    assert change.draft.starts_at == declared and change.post_due_at == declared + timedelta(hours=24)
    assert AuditAction.EMERGENCY_DECLARED in [e.action for e in change.audit]
    assert pagerduty.requests_to("/oncalls")  # the on-call asked of PagerDuty
    incidents = harness.posts_to("CINCIDENTS")
    assert incidents and "Severity" in rendered(incidents[0])
    for call in harness.slack.calls_to("chat.postMessage"):  # hostile text never pings or links
        for text in mrkdwn(call):
            assert "<!channel>" not in text and "<https://evil" not in text and "<@UCTO>" not in text
    # the managers who post-approve get their card at declaration, with only the post buttons
    for manager in ("UMGR1", "UMGR2"):
        [card] = harness.posts_to(manager)
        assert buttons(card) == {"change_post_approve", "change_post_reject"}
        assert "post-approval pending" in rendered(card)
    # the on-call needs to give no go-ahead: their card only acknowledges
    [on_call_card] = [c for c in harness.posts_to("UALICE") if c.params.get("blocks")]
    assert buttons(on_call_card) == {"change_acknowledge"}
    channel_card = harness.posts_to("CCHANGES")[0]
    assert "post-approval pending" in rendered(channel_card)
    assert "no sign-off needed" not in json.dumps(
        [rendered(c) for c in harness.slack.calls_to("chat.postMessage")]
    )
    told = harness.posts_to("UDEV")[0]
    assert "emergency change" in rendered(told) and "Post-approval pending" in rendered(told)


@pytest.mark.parametrize("policy_text", [FIX_FIRST])
async def test_the_on_call_acknowledges_once_and_only_the_on_call(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    await file_emergency(harness)
    await harness.click("change_acknowledge", CR, user="UMGR1", channel="D_UMGR1")
    assert "only the on-call" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_acknowledge", CR, user="UALICE", channel="D_UALICE")
    await harness.click("change_acknowledge", CR, user="UALICE", channel="D_UALICE")
    assert "acknowledged it already" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    change = await harness.change(CR)
    assert [e.actor for e in change.audit if e.action is AuditAction.ON_CALL_ACKNOWLEDGED] == ["UALICE"]
    updates = {c.params["channel"]: c for c in harness.slack.calls_to("chat.update")}
    assert "acknowledged by" in rendered(updates["CCHANGES"])
    assert buttons(updates["D_UALICE"]) == set()  # acknowledged: nothing left to click
    assert buttons(updates["D_UMGR1"]) == {"change_post_approve", "change_post_reject"}


@pytest.mark.parametrize("policy_text", [FIX_FIRST])
async def test_a_form_emergency_missing_its_fix_is_answered_on_the_form(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    answer = await file_emergency(harness, implementation_plan=..., description=...)
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"description", "implementation_plan"}
    assert not harness.slack.calls_to("chat.postMessage") and not pagerduty.requests_to("/oncalls")


async def test_completed_without_start_keeps_the_real_duration(harness: Harness) -> None:
    declared = harness.clock.now()
    await declare(harness)
    await harness.advance_to(declared + timedelta(minutes=40))
    await harness.click("change_complete", CR, user="UDEV")
    change = await harness.change(CR)
    assert change.status is Status.COMPLETED
    assert change.started_at == declared and change.finished_at == declared + timedelta(minutes=40)


@pytest.mark.parametrize("policy_text", [PD_POLICY])
async def test_with_a_go_ahead_the_on_call_card_offers_it_and_the_managers_cards_do_not(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    await declare(harness)
    [card] = [c for c in harness.posts_to("UALICE") if c.params.get("blocks")]
    assert buttons(card) == {"change_approve", "change_reject"} and "Go ahead" in rendered(card)
    [manager_card] = harness.posts_to("UMGR1")
    assert buttons(manager_card) == {"change_post_approve", "change_post_reject"}
    await harness.click("change_approve", CR, user="UALICE", channel="D_UALICE")
    go = await harness.change(CR)
    assert go.status is Status.APPROVED and go.post_state is PostState.PENDING
    await harness.advance_to(harness.clock.now() + timedelta(minutes=30))
    await harness.click("change_complete", CR, user="UDEV")
    done = await harness.change(CR)
    assert done.started_at == go.approved_at  # the go-ahead, not the declaration
    updates = {c.params["channel"]: c for c in harness.slack.calls_to("chat.update")}
    assert buttons(updates["D_UALICE"]) == set()


PRE_APPROVAL = FIX_FIRST.replace(
    "emergency:\n  fallback: [UFALLBACK]",
    "emergency:\n  fallback: [UFALLBACK]\n  pre_approval: [on_call, cto]",
)


@pytest.mark.parametrize("policy_text", [PRE_APPROVAL])
async def test_on_call_and_manager_pre_approval_before_the_fix(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    await file_emergency(harness)
    change = await harness.change(CR)
    assert change.status is Status.PENDING_APPROVAL
    assert [(s.role, s.members) for s in change.steps] == [("on_call", ("UALICE",)), ("cto", ("UCTO",))]
    assert buttons(harness.posts_to("UCTO")[0]) == {"change_approve", "change_reject"}
    await harness.click("change_start", CR, user="UDEV")
    assert "cannot start" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    await harness.click("change_approve", CR, user="UALICE", channel="D_UALICE")
    await harness.click("change_approve", CR, user="UCTO", channel="D_UCTO")
    assert (await harness.change(CR)).status is Status.APPROVED
