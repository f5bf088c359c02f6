"""Only approved changes happen: approvals bind to the window and the people, over the real door.

Separation of duties, who may link an incident, the start gate (window, freezes, override)
and reschedules that send a change back for approval.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.enums import Status
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import change_form_state

CR = "CR-2026-0001"
AUTHZ_POLICY = (
    TEST_POLICY
    + """windows:
  normal:
    - {days: [tue, wed, thu], start: "10:00", end: "16:00"}
blackouts:
  - name: Friday afternoon
    weekly: {days: [fri], start: "14:00", end: "24:00"}
incident_roles: [engineering_manager]
start_override_roles: [engineering_manager, cto]
reschedule:
  keep_approval_within: 30m
"""
)
# Tuesday 24 Nov 2026, 10:30 London (= UTC in winter): inside the normal window
INSIDE = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.fixture
def policy_text() -> str:
    return AUTHZ_POLICY


async def file(
    harness: Harness,
    *,
    start: datetime = INSIDE,
    implementer: str = "UIMPL",
    exception: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A medium-risk normal change (one tech lead approves), `implementer` named."""
    at = int(start.timestamp())
    state = change_form_state(**harness.form(starts_at=at, ends_at=at + 3600, **fields))
    state["implementer"] = {"implementer": {"type": "users_select", "selected_user": implementer}}
    if exception:
        state["exception"] = {
            "exception": {"type": "checkboxes", "selected_options": [{"value": "requested"}]}
        }
        state["exception_reason"] = {"exception_reason": {"type": "plain_text_input", "value": exception}}
    from modals.intake import new_change_modal

    blocks = new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]
    return await harness.submit("change_new", state, user="UREQ", view_blocks=blocks)


async def approved(harness: Harness, **fields: Any) -> Any:
    assert await file(harness, **fields) == {}
    await harness.click("change_approve", CR, user="ULEAD2", channel="D_ULEAD2")
    change = await harness.change(CR)
    assert change.status is Status.APPROVED
    return change


def ephemerals(harness: Harness, user: str) -> list[str]:
    return [
        c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral") if c.params["user"] == user
    ]


def answer_text(answer: dict[str, Any]) -> str:
    return json.dumps(answer.get("blocks") or [])


async def reschedule(harness: Harness, start: datetime, *, user: str = "UREQ") -> dict[str, Any]:
    await harness.command(f"reschedule {CR}", user=user)
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    at = int(start.timestamp())
    return await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": at}},
            "ends_at": {"ends_at": {"selected_date_time": at + 3600}},
        },
        user=user,
        private_metadata=meta,
    )


async def test_the_implementer_is_neither_offered_nor_allowed_to_approve(harness: Harness) -> None:
    assert await file(harness, implementer="ULEAD1") == {}
    dm_cards = {
        c.params["channel"] for c in harness.slack.calls_to("chat.postMessage") if c.params.get("blocks")
    }
    assert dm_cards == {"CCHANGES", "ULEAD2"}  # ULEAD1 implements it: no Approve button for them
    await harness.click("change_approve", CR, user="ULEAD1")
    change = await harness.change(CR)
    assert change.status is Status.PENDING_APPROVAL and not change.approvals
    assert ephemerals(harness, "ULEAD1") == [
        "Not recorded: you implement this change, so you cannot approve or reject it."
    ]
    assert change.audit[-1].action.value == "decision_refused"
    assert change.audit[-1].details["refusal"] == "own_implementation"
    await harness.click("change_approve", CR, user="ULEAD2", channel="D_ULEAD2")
    assert (await harness.change(CR)).status is Status.APPROVED


async def test_only_the_changes_people_link_an_incident_and_only_once_it_started(harness: Harness) -> None:
    assert await file(harness) == {}
    pending = await harness.command(f"incident {CR} INC-7", user="UREQ")
    assert "never started" in answer_text(pending) and "pending approval" in answer_text(pending)
    await harness.click("change_approve", CR, user="ULEAD2", channel="D_ULEAD2")
    not_started = await harness.command(f"incident {CR} INC-7", user="UMGR1")
    assert "approved and never started" in answer_text(not_started)
    await harness.advance_to(INSIDE)
    await harness.click("change_start", CR, user="UIMPL")
    stranger = await harness.command(f"incident {CR} INC-7", user="UOPS")
    assert "only the requester, the implementer, engineering_manager can link" in answer_text(stranger)
    change = await harness.change(CR)
    assert change.caused_incident is None
    refused = [e for e in change.audit if e.action.value == "action_refused"]
    assert [e.actor for e in refused] == ["UREQ", "UMGR1", "UOPS"]
    assert {e.details["action"] for e in refused} == {"link_incident"}
    linked = await harness.command(f"incident {CR} INC-7", user="UMGR1")  # a manager, via the group
    assert "counts as a change failure" in answer_text(linked)
    assert (await harness.change(CR)).caused_incident == "INC-7"


async def test_a_start_is_held_to_the_window_unless_an_override_role_gives_a_reason(harness: Harness) -> None:
    await approved(harness)
    await harness.click("change_start", CR, user="UIMPL")
    [early] = ephemerals(harness, "UIMPL")
    assert "its approved window opens Tue 24 Nov 10:30 GMT; it may start from Tue 24 Nov 10:00 GMT" in early
    assert '`/change start CR-2026-0001 --override "reason"`' in early
    change = await harness.change(CR)
    assert change.status is Status.APPROVED and change.audit[-1].action.value == "action_refused"
    assert change.audit[-1].details["refusal"].startswith("its approved window opens")
    # completing without a start is a start too
    await harness.click("change_complete", CR, user="UIMPL")
    assert (await harness.change(CR)).status is Status.APPROVED
    # the implementer holds no override role
    answer = await harness.command(f'start {CR} --override "hotfix"', user="UIMPL")
    assert "only Engineering manager or CTO can start it anyway" in answer_text(answer)
    assert "Say why" in answer_text(await harness.command(f"start {CR} --override", user="UMGR1"))
    answer = await harness.command(f'start {CR} --override "vendor deadline <!here>"', user="UMGR1")
    assert "is in progress" in answer_text(answer)
    change = await harness.change(CR)
    assert change.status is Status.IN_PROGRESS
    override = change.audit[-2]
    assert override.action.value == "start_overridden" and override.actor == "UMGR1"
    assert override.details["kind"] == "early" and override.details["reason"] == "vendor deadline <!here>"
    card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"][-1]
    shown = json.dumps(card.params["blocks"])
    assert "Started anyway by <@UMGR1>" in shown and "vendor deadline &lt;!here&gt;" in shown


async def test_a_start_inside_the_tolerance_works_after_the_window_or_in_a_freeze_it_does_not(
    harness: Harness,
) -> None:
    await approved(harness)
    await harness.advance_to(INSIDE - timedelta(minutes=30))  # the policy's default tolerance
    await harness.command("freeze start audit week", user="UMGR1")
    await harness.click("change_start", CR, user="UIMPL")
    assert "a change freeze is on" in ephemerals(harness, "UIMPL")[-1]
    await harness.command("freeze end", user="UMGR1")
    await harness.click("change_start", CR, user="UIMPL")
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    # a second change whose window has closed
    harness.clock.set(INSIDE + timedelta(hours=2))
    second = INSIDE + timedelta(days=1)
    assert await file(harness, start=second, title="Second", services=["redis-cache"]) == {}
    await harness.click("change_approve", "CR-2026-0002", user="ULEAD2", channel="D_ULEAD2")
    await harness.advance_to(second + timedelta(hours=1))
    await harness.click("change_start", "CR-2026-0002", user="UIMPL")
    assert "its approved window closed Wed 25 Nov 11:30 GMT" in ephemerals(harness, "UIMPL")[-1]
    assert (await harness.change("CR-2026-0002")).status is Status.APPROVED


async def test_moving_an_approved_change_sends_it_back_for_approval(harness: Harness) -> None:
    await approved(harness)
    assert await reschedule(harness, INSIDE + timedelta(minutes=30)) == {}  # within keep_approval_within
    kept = await harness.change(CR)
    assert kept.status is Status.APPROVED and [a.user for a in kept.approvals] == ["ULEAD2"]
    dms_before = len(harness.posts_to("ULEAD2"))

    assert await reschedule(harness, INSIDE + timedelta(days=1)) == {}
    moved = await harness.change(CR)
    assert moved.status is Status.PENDING_APPROVAL and not moved.approvals and moved.approved_at is None
    voided = [e for e in (await harness.bot.context.service.get_change(change_id=CR)).audit][-1]
    assert voided.action.value == "approvals_voided" and voided.details["approvers"] == ["ULEAD2"]
    # the approvers are told what moved, from -> to, and their cards have the buttons again
    told = [c.params["text"] for c in harness.posts_to("ULEAD2")[dms_before:]]
    assert len(told) == 1 and "moved *CR-2026-0001* from" in told[0] and "needs approval again" in told[0]
    assert len([c for c in harness.posts_to("ULEAD1") if not c.params.get("blocks")]) == 1
    dm_card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "D_ULEAD2"][-1]
    assert "change_approve" in json.dumps(dm_card.params["blocks"])
    notices = await harness.bot.context.gateway._repo.notices(CR)
    pending = [n for n in notices if n.state == "pending" and not n.key.startswith("approval_")]
    assert not pending  # no timeline for an unapproved change (only its approval is chased)
    # a start in the new window is refused until it is approved again
    await harness.advance_to(INSIDE + timedelta(days=1))
    await harness.click("change_start", CR, user="UIMPL")
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL
    clicked_at = harness.clock.now()  # delivering the chase's messages may move the fake clock on
    await harness.click("change_approve", CR, user="ULEAD2", channel="D_ULEAD2")
    again = await harness.change(CR)
    assert again.status is Status.APPROVED and again.approved_at == clicked_at


async def test_rescheduling_a_change_with_an_exception_is_checked_like_any_other(harness: Harness) -> None:
    monday = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)  # outside the normal window
    assert await file(harness, start=monday, exception="Vendor only on Mondays") == {}
    assert (await harness.change(CR)).steps[-1].purpose == "exception"
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # in the Friday afternoon blackout
    answer = await reschedule(harness, friday)
    assert "Friday afternoon" in answer["errors"]["starts_at"]
    assert (await harness.change(CR)).draft.starts_at == monday
