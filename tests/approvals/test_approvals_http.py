"""Routed, authorised approvals over the real HTTP door."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from domain.enums import Decision, Status
from tests.support.harness import Harness
from tests.support.slack_requests import block_action, interaction_body, view_submission


def ephemerals_for(harness: Harness, user: str) -> list[str]:
    return [
        c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral") if c.params["user"] == user
    ]


def card_updates(harness: Harness) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in harness.slack.calls_to("chat.update"):
        counts[call.params["channel"]] = counts.get(call.params["channel"], 0) + 1
    return counts


async def test_card_goes_to_channel_and_each_eligible_approver(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")  # high risk: 2 leads + a manager
    posts = harness.slack.calls_to("chat.postMessage")
    cards = [c for c in posts if c.params.get("blocks")]
    channels = sorted(c.params["channel"] for c in cards)
    assert channels == ["CCHANGES", "ULEAD1", "ULEAD2", "UMGR1", "UMGR2"]
    for card in cards:
        actions = [b for b in card.params["blocks"] if b["type"] == "actions"]
        assert [e["action_id"] for e in actions[0]["elements"]] == [
            "change_approve",
            "change_request_changes",
            "change_reject",
        ]
        assert {e["value"] for e in actions[0]["elements"]} == {"CR-2026-0001"}
    # the group was resolved through usergroups.users.list
    assert harness.slack.calls_to("usergroups.users.list")[0].params["usergroup"] == "SMANAGERS"


async def test_approval_completes_quorum_updates_every_card_and_tells_requester(harness: Harness) -> None:
    await harness.file_change()  # medium risk: one tech lead
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD2", channel="D_ULEAD2")
    change = await harness.change("CR-2026-0001")
    assert change.status is Status.APPROVED
    assert [(a.user, a.decision) for a in change.approvals] == [("ULEAD2", Decision.APPROVE)]
    # channel copy and both DM copies were updated in place, buttons gone
    assert card_updates(harness) == {"CCHANGES": 1, "D_ULEAD1": 1, "D_ULEAD2": 1}
    for call in harness.slack.calls_to("chat.update"):
        assert "change_approve" not in json.dumps(call.params["blocks"])
        assert "<@ULEAD2>" in json.dumps(call.params["blocks"])
        # the implementer's buttons appear on the channel copy only
        assert ("change_start" in json.dumps(call.params["blocks"])) == (call.params["channel"] == "CCHANGES")
    told = [
        c.params["text"] for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ"
    ]
    assert any("<@ULEAD2> approved your change *CR-2026-0001*" in t for t in told)
    actions = [e.action.value for e in change.audit]
    assert actions == ["submitted", "approval_recorded", "approved"]
    assert change.audit[1].actor == "ULEAD2"
    assert change.audit[1].details["team_id"] == "T0001"


async def test_requester_cannot_approve_own_change(harness: Harness) -> None:
    await harness.file_change(user="ULEAD1")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    change = await harness.change("CR-2026-0001")
    assert change.status is Status.PENDING_APPROVAL and not change.approvals
    assert ephemerals_for(harness, "ULEAD1") == [
        "Not recorded: you requested this change, so you cannot approve or reject it."
    ]
    assert change.audit[-1].action.value == "decision_refused"
    assert change.audit[-1].details["refusal"] == "own_request"
    # and the requester was never sent a DM card to decide on
    assert "ULEAD1" not in {
        c.params["channel"] for c in harness.slack.calls_to("chat.postMessage") if c.params.get("blocks")
    }


async def test_ineligible_user_is_refused_and_audited(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_approve", "CR-2026-0001", user="USTRANGER")
    change = await harness.change("CR-2026-0001")
    assert not change.approvals and change.status is Status.PENDING_APPROVAL
    assert "not an approver" in ephemerals_for(harness, "USTRANGER")[0]
    assert change.audit[-1].actor == "USTRANGER"
    assert "chat.update" not in {c.method for c in harness.slack.calls}


async def test_second_click_records_nothing_new(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    change = await harness.change("CR-2026-0001")
    assert [a.user for a in change.approvals] == ["ULEAD1"]
    assert change.version == 2
    assert ephemerals_for(harness, "ULEAD1") == ["Not recorded: you have already decided on this change."]


async def test_group_member_approves_and_group_lookup_is_cached(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")
    await harness.click("change_approve", "CR-2026-0001", user="UMGR2")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD2")
    change = await harness.change("CR-2026-0001")
    assert change.status is Status.APPROVED
    assert [a.step_index for a in change.approvals] == [1, 0, 0]
    assert len(harness.slack.calls_to("usergroups.users.list")) == 1


async def test_quorum_step_full_refuses_extra_approver(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")
    await harness.click("change_approve", "CR-2026-0001", user="UMGR1")
    await harness.click("change_approve", "CR-2026-0001", user="UMGR2")
    change = await harness.change("CR-2026-0001")
    assert [a.user for a in change.approvals] == ["UMGR1"]
    assert "already complete" in ephemerals_for(harness, "UMGR2")[0]


async def test_concurrent_clicks_never_exceed_or_skip_quorum(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")
    users = ["ULEAD1", "ULEAD2", "UMGR1", "UMGR2", "ULEAD1", "UMGR1", "UREQ", "USTRANGER"]
    await asyncio.gather(*(harness.click("change_approve", "CR-2026-0001", user=u) for u in users))
    await harness.settle()
    change = await harness.change("CR-2026-0001")
    assert change.status is Status.APPROVED
    approvers = [a.user for a in change.approvals]
    assert len(approvers) == len(set(approvers)) == 3
    assert {"ULEAD1", "ULEAD2"} <= set(approvers)
    assert len({"UMGR1", "UMGR2"} & set(approvers)) == 1
    assert [e.action.value for e in change.audit].count("approved") == 1


async def test_reject_asks_for_a_reason_then_rejects(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_reject", "CR-2026-0001", user="ULEAD1")
    opened = harness.slack.calls_to("views.open")[-1].params["view"]
    assert opened["callback_id"] == "change_reject_reason"
    meta = opened["private_metadata"]
    empty = await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": "  "}}},
        user="ULEAD1",
        private_metadata=meta,
    )
    assert empty["response_action"] == "errors" and "reason" in empty["errors"]
    assert (await harness.change("CR-2026-0001")).status is Status.PENDING_APPROVAL
    answer = await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": "No rollback tested <!channel>"}}},
        user="ULEAD1",
        private_metadata=meta,
    )
    assert answer == {}
    change = await harness.change("CR-2026-0001")
    assert change.status is Status.REJECTED
    assert change.approvals[0].reason == "No rollback tested <!channel>"
    told = [
        c.params["text"] for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ"
    ]
    assert any(
        "rejected your change" in t and "&lt;!channel&gt;" in t and "<!channel>" not in t for t in told
    )
    assert set(card_updates(harness)) == {"CCHANGES", "D_ULEAD1", "D_ULEAD2"}


async def test_reject_by_ineligible_user_opens_no_modal(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_reject", "CR-2026-0001", user="USTRANGER")
    assert not harness.slack.calls_to("views.open")
    assert "not an approver" in ephemerals_for(harness, "USTRANGER")[0]


async def test_forged_reject_submission_is_refused_inline(harness: Harness) -> None:
    await harness.file_change()
    answer = await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": "nope"}}},
        user="USTRANGER",
        private_metadata=json.dumps({"change_id": "CR-2026-0001"}),
    )
    assert answer["response_action"] == "errors"
    assert "not an approver" in answer["errors"]["reason"]
    bad_meta = await harness.submit("change_reject_reason", {}, user="ULEAD1", private_metadata="{not json")
    assert bad_meta["response_action"] == "errors"
    assert (await harness.change("CR-2026-0001")).status is Status.PENDING_APPROVAL


async def test_click_on_decided_change_is_refused(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD2")
    assert "no longer waiting" in ephemerals_for(harness, "ULEAD2")[0]
    missing = await harness.click("change_approve", "CR-2026-9999", user="ULEAD2")
    assert missing.status == 200
    assert "does not exist" in ephemerals_for(harness, "ULEAD2")[-1]


async def test_unused_helper_is_importable() -> None:
    assert view_submission("x", {}, user="U1")["view"]["callback_id"] == "x"


async def test_a_refusal_of_a_click_from_app_home_reaches_the_user_by_dm(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """An App Home click comes from no channel: an ephemeral would be undeliverable there."""
    await harness.file_change()
    payload = block_action("change_approve", "CR-2026-0001", user="USTRANGER")
    del payload["channel"]
    payload["container"] = {"type": "view", "view_id": "VHOME"}
    caplog.set_level(logging.WARNING)
    response = await harness.post(interaction_body(payload), content_type="application/x-www-form-urlencoded")
    assert response.status == 200
    await harness.settle()
    [dm] = [c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "USTRANGER"]
    assert "not an approver" in str(dm.params["text"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
