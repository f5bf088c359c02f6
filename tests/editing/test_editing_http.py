"""Correcting a CR over the real HTTP door: `/change edit` and the Edit button open the
filled-in form, its submission edits the CR; approvers request changes; a rejected or
sent-back CR is resubmitted, keeping its id."""

from __future__ import annotations

import json
from typing import Any

from domain.enums import Status
from domain.model import AuditAction
from tests.support.harness import Harness
from tooling.slack_payloads import prefilled_state

CR = "CR-2026-0001"
HOSTILE = "<!channel> *bold* <@UEVIL> & <https://evil.example|click>"


def opened_view(harness: Harness) -> dict[str, Any]:
    view: dict[str, Any] = harness.slack.calls_to("views.open")[-1].params["view"]
    return view


async def save(harness: Harness, user: str, **changes: dict[str, Any]) -> Any:
    view = opened_view(harness)
    return await harness.submit(
        view["callback_id"],
        prefilled_state(view, **changes),
        user=user,
        private_metadata=view["private_metadata"],
        view_blocks=view["blocks"],
    )


def ephemerals(harness: Harness, user: str) -> list[str]:
    return [
        c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral") if c.params["user"] == user
    ]


def dm_texts(harness: Harness, user: str) -> list[str]:
    return [
        c.params["text"] for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == user
    ]


async def test_change_edit_opens_the_form_filled_in_and_unchanged_it_saves_nothing(harness: Harness) -> None:
    await harness.file_change(title=HOSTILE, downtime="15")

    await harness.command(f"edit {CR}", user="UREQ")

    view = opened_view(harness)
    assert (view["callback_id"], view["title"]["text"]) == ("change_edit_submit", f"Edit {CR}")
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["title"]["initial_value"] == HOSTILE  # plain text: shown as typed, never parsed
    assert inputs["category"]["initial_option"]["value"] == "normal"
    assert [o["value"] for o in inputs["services"]["initial_options"]] == ["api-server"]
    assert inputs["downtime"]["initial_value"] == "15"
    answer = await save(harness, "UREQ")
    assert answer == {"response_action": "errors", "errors": {"title": "Not saved: nothing was changed."}}


async def test_moving_an_approved_window_sends_it_back_to_the_approvers_with_the_diff(
    harness: Harness,
) -> None:
    await harness.file_change()
    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    assert (await harness.change(CR)).status is Status.APPROVED
    await harness.click("change_edit", CR, user="UREQ")
    start = opened_view(harness)["blocks"]
    starts = next(b for b in start if b.get("block_id") == "starts_at")["element"]["initial_date_time"]
    ends = next(b for b in start if b.get("block_id") == "ends_at")["element"]["initial_date_time"]

    answer = await save(
        harness,
        "UREQ",
        starts_at={"selected_date_time": starts + 86400},
        ends_at={"selected_date_time": ends + 86400},
    )

    assert answer == {}
    change = await harness.change(CR)
    assert (change.status, change.approvals) == (Status.PENDING_APPROVAL, ())
    edited = next(e for e in change.audit if e.action is AuditAction.EDITED)
    assert edited.details["reapproval"] is True and edited.details["changes"][0].startswith("Window: ")
    assert AuditAction.APPROVALS_VOIDED in [e.action for e in change.audit]
    told = [t for t in dm_texts(harness, "ULEAD1") if "edited" in t]
    assert told and "Window: " in told[-1] and "waits for approval again" in told[-1]
    card = harness.slack.calls_to("chat.update")[-1].params
    blocks = json.dumps(card["blocks"])
    assert "Edited by <@UREQ>: Window: " in blocks and "change_approve" in blocks


async def test_only_the_requester_may_edit_and_the_refusal_is_one_audited_line(harness: Harness) -> None:
    await harness.file_change()

    await harness.click("change_edit", CR, user="ULEAD1")
    reply = await harness.command(f"edit {HOSTILE}", user="UREQ")

    assert ephemerals(harness, "ULEAD1") == [f"Not editable: only the requester can edit {CR}."]
    assert not harness.slack.calls_to("views.open")
    change = await harness.change(CR)
    refusal = change.audit[-1]
    assert (refusal.action, refusal.actor, refusal.details["action"]) == (
        AuditAction.ACTION_REFUSED,
        "ULEAD1",
        "edit",
    )
    assert reply == {} and ephemerals(harness, "UREQ") == ["Which change? Use `/change edit CR-2026-0001`."]


async def test_a_typo_fix_before_any_decision_tells_nobody(harness: Harness) -> None:
    await harness.file_change()
    posts = len(harness.slack.calls_to("chat.postMessage"))
    await harness.command(f"edit {CR}", user="UREQ")

    answer = await save(harness, "UREQ", description={"value": "Roll out gateway 2.4 (typo fixed)."})
    again = await save(harness, "UREQ", description={"value": "Roll out gateway 2.4 (typo fixed)."})

    assert answer == {}
    assert again == {"response_action": "errors", "errors": {"title": "Not saved: nothing was changed."}}
    assert len(harness.slack.calls_to("chat.postMessage")) == posts  # the cards refresh, nobody is told
    change = await harness.change(CR)
    assert (change.status, change.draft.description) == (
        Status.PENDING_APPROVAL,
        "Roll out gateway 2.4 (typo fixed).",
    )
    assert [e.action for e in change.audit].count(AuditAction.EDITED) == 1  # a double click edits once


async def test_request_changes_then_edit_then_approve_keeps_the_id(harness: Harness) -> None:
    await harness.file_change()
    card = harness.posts_to("CCHANGES")[0].params["blocks"]
    decide = next(b for b in card if b.get("block_id") == f"decide:{CR}")
    assert [e["action_id"] for e in decide["elements"]] == [
        "change_approve",
        "change_request_changes",
        "change_reject",
    ]

    await harness.click("change_request_changes", CR, user="ULEAD1", channel="D_ULEAD1")
    view = opened_view(harness)
    assert view["callback_id"] == "change_request_changes_submit"
    values = {"reason": {"reason": {"type": "plain_text_input", "value": HOSTILE}}}
    meta = view["private_metadata"]
    assert await harness.submit(view["callback_id"], values, user="ULEAD1", private_metadata=meta) == {}
    again = await harness.submit(view["callback_id"], values, user="ULEAD1", private_metadata=meta)

    assert again["response_action"] == "errors"  # the second one is refused, nothing written twice
    change = await harness.change(CR)
    assert change.status is Status.CHANGES_REQUESTED
    assert [e.action for e in change.audit].count(AuditAction.CHANGES_REQUESTED) == 1
    asked = [c.params for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ"][
        -1
    ]
    raw = json.dumps(asked)
    assert "<!channel>" not in raw and "<@UEVIL>" not in raw and "&lt;!channel&gt;" in asked["text"]
    assert "change_edit" in raw  # the requester's Edit button
    updated = json.dumps(harness.slack.calls_to("chat.update")[-1].params["blocks"])
    assert "Changes requested by <@ULEAD1>: &lt;!channel&gt;" in updated and "change_approve" not in updated
    assert "<!channel>" not in updated

    await harness.click("change_edit", CR, user="UREQ", channel="D_UREQ")
    assert await save(harness, "UREQ", test_plan={"value": "Canary at 5% for an hour."}) == {}
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL
    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    change = await harness.change(CR)
    assert (change.id, change.status, change.draft.test_plan) == (
        CR,
        Status.APPROVED,
        "Canary at 5% for an hour.",
    )


async def test_only_an_eligible_approver_may_request_changes(harness: Harness) -> None:
    await harness.file_change()

    await harness.click("change_request_changes", CR, user="UCTO")
    await harness.click("change_request_changes", CR, user="UREQ")

    assert not harness.slack.calls_to("views.open")
    assert ephemerals(harness, "UCTO") == [
        "Not recorded: you are not an approver for any step of this change."
    ]
    assert ephemerals(harness, "UREQ") == [
        "Not recorded: you requested this change, so you cannot approve or reject it."
    ]


async def test_a_rejected_change_is_edited_and_resubmitted(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_reject", CR, user="ULEAD1", channel="D_ULEAD1")
    meta = opened_view(harness)["private_metadata"]
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "Test the rollback first."}}}
    await harness.submit("change_reject_reason", values, user="ULEAD1", private_metadata=meta)
    assert (await harness.change(CR)).status is Status.REJECTED

    await harness.command(f"edit {CR}", user="UREQ")
    assert await save(harness, "UREQ", rollback_plan={"value": "Redeploy 2.3; rehearsed on staging."}) == {}

    change = await harness.change(CR)
    assert (change.id, change.status, change.approvals) == (CR, Status.PENDING_APPROVAL, ())
    told = [t for t in dm_texts(harness, "ULEAD1") if "resubmitted" in t]
    assert told and "Rollback plan changed" in told[-1]
