"""Correcting a filed CR through ChangeService on the in-memory repository: edits, requests
for changes and resubmissions, each keeping the CR's id and trail."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.editing import form_of
from domain.enums import Decision, Risk, Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.messages import ChangesRequested, Edited
from domain.model import AuditAction
from domain.policy_loader import parse_policy
from domain.quorum import Refusal
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import REQUESTER, change_form, make_service
from tests.support.memory_repository import MemoryChangeRepository
from tests.support.policy_fixture import TEST_POLICY

HOSTILE = "<!channel> *bold* <@UEVIL> & <https://evil.example|click>"


def actions(change: object) -> list[str]:
    return [e.action.value for e in change.audit]  # type: ignore[attr-defined]


def kinds_since(repo: MemoryChangeRepository, change_id: str, seen: int) -> list[IntentKind]:
    return [intent.kind for intent in repo.intents_for(change_id)[seen:]]


async def test_a_title_and_description_fix_before_any_decision_only_refreshes_the_card(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    seen = len(repo.intents_for(change.id))
    form = replace(form_of(change), title="Upgrade the API gateway to 2.4", description="Typo fixed.")

    outcome = await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    assert outcome.refusal is None
    edited = await service.get_change(change_id=change.id)
    assert (edited.id, edited.status, edited.steps) == (change.id, Status.PENDING_APPROVAL, change.steps)
    assert (edited.draft.title, edited.draft.description) == ("Upgrade the API gateway to 2.4", "Typo fixed.")
    assert kinds_since(repo, change.id, seen) == [IntentKind.REFRESH_CARDS]
    entry = edited.audit[-1]
    assert (entry.action, entry.actor, entry.details["reapproval"]) == (AuditAction.EDITED, REQUESTER, False)
    assert entry.details["changes"] == ["Title: Upgrade the API gateway → Upgrade the API gateway to 2.4",
                                        "Description changed"]  # fmt: skip
    assert entry.details["fields"]["description"]["to"] == "Typo fixed."


async def test_moving_the_window_after_an_approval_voids_it_and_asks_again_with_a_diff(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock, impact="high"), requester=REQUESTER)
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    seen = len(repo.intents_for(change.id))
    form = form_of(await service.get_change(change_id=change.id))
    form = replace(form, starts_at=form.starts_at + 7200, ends_at=form.ends_at + 7200)  # type: ignore[operator]

    outcome = await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    assert outcome.refusal is None
    edited = await service.get_change(change_id=change.id)
    assert edited.status is Status.PENDING_APPROVAL and edited.approvals == ()
    assert edited.draft.starts_at == change.draft.starts_at + timedelta(hours=2)
    assert actions(edited)[-2:] == ["edited", "approvals_voided"]
    assert edited.audit[-1].details["approvers"] == ["ULEAD1"]
    line = edited.audit[-2].details["changes"][0]
    assert line.startswith("Window: ") and " → " in line
    intents = repo.intents_for(change.id)[seen:]
    assert [i.kind for i in intents] == [
        IntentKind.REFRESH_CARDS,
        IntentKind.MESSAGE,
        IntentKind.DM_APPROVERS,
    ]
    told = intents[2].message
    assert isinstance(told, Edited) and told.reapproval and told.changes == (line,)
    assert await service.approvers_to_notify(change_id=change.id) == ["ULEAD1", "ULEAD2", "UMGR1", "UMGR2"]


async def test_raising_the_impact_of_an_approved_change_routes_its_steps_again(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert [n.key for n in await repo.notices(change.id) if n.state == "pending"]

    form = replace(form_of(await service.get_change(change_id=change.id)), impact="high")
    await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    edited = await service.get_change(change_id=change.id)
    assert (edited.status, edited.risk, edited.approved_at) == (Status.PENDING_APPROVAL, Risk.HIGH, None)
    assert [(s.role, s.count) for s in edited.steps] == [("tech_lead", 2), ("engineering_manager", 1)]
    pending = {n.key for n in await repo.notices(change.id) if n.state == "pending"}
    # no window notices until approved again; the approvers are chased afresh, from the edit
    assert pending == {"approval_reminder", "approval_deadline", "approval_at_start"}
    assert edited.approval_due_at is not None and edited.approval_due_at > clock.now()
    assert {"Impact: medium → high", "Risk: medium → high"} <= set(edited.audit[-2].details["changes"])


async def test_an_edit_that_needs_no_sign_off_any_more_is_approved_with_its_timeline(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    form = replace(form_of(change), impact="low", likelihood="low")

    await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    edited = await service.get_change(change_id=change.id)
    assert (edited.status, edited.steps, edited.approved_at) == (Status.APPROVED, (), clock.now())
    pending = [n.key for n in await repo.notices(change.id) if n.state == "pending"]
    assert pending[:1] == ["t_minus_24h"]  # the approval chase is over, the window's notices planned
    assert actions(edited)[-1] == "auto_approved"


async def test_only_the_requester_or_a_change_manager_may_edit_and_refusals_are_audited(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    policy = parse_policy(TEST_POLICY.replace("  cto: [UCTO]\n", "  cto: [UCTO]\n  change_manager: [UCM]\n"))
    service = make_service(repo, clock, policy=policy)
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    form = replace(form_of(change), title="Fixed by the change manager")

    refused = await service.edit_change(change_id=change.id, user="ULEAD1", form=form)
    managed = await service.edit_change(change_id=change.id, user="UCM", form=form)

    assert refused.refusal == f"only the requester or a change manager can edit {change.id}"
    assert managed.refusal is None and managed.change.draft.title == "Fixed by the change manager"
    trail = await service.get_change(change_id=change.id)
    refusal = next(e for e in trail.audit if e.action is AuditAction.ACTION_REFUSED)
    assert (refusal.actor, refusal.details["action"]) == ("ULEAD1", "edit")


async def test_a_started_or_cancelled_change_is_not_edited(service: ChangeService, clock: FakeClock) -> None:
    started = await service.submit_change(form=change_form(clock, impact="low", likelihood="low", starts_in=timedelta(minutes=1)),
                                          requester=REQUESTER)  # fmt: skip
    clock.advance(timedelta(minutes=2))
    await service.record_progress(change_id=started.id, user=REQUESTER, action=ProgressAction.START)
    cancelled = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    await service.cancel(change_id=cancelled.id, user=REQUESTER)

    checked = await service.check_edit(change_id=started.id, user=REQUESTER)
    dropped = await service.edit_change(change_id=cancelled.id, user=REQUESTER, form=form_of(cancelled))

    assert checked.refusal == f"{started.id} is in progress: a change can only be edited before it starts"
    assert dropped.refusal == f"{cancelled.id} is cancelled: file a new change instead"


async def test_an_edit_is_validated_like_the_form_and_unchanged_is_refused(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    with pytest.raises(IntakeRejected) as rejected:
        await service.edit_change(
            change_id=change.id, user=REQUESTER, form=replace(form_of(change), rollback_plan="")
        )
    unchanged = await service.edit_change(change_id=change.id, user=REQUESTER, form=form_of(change))

    assert set(rejected.value.errors) == {"rollback_plan"}
    assert unchanged.refusal == "nothing was changed"
    assert (await service.get_change(change_id=change.id)).version == change.version


async def test_an_approver_requests_changes_the_requester_edits_and_it_is_approved(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    asked = await service.request_changes(change_id=change.id, user="ULEAD1", comment=HOSTILE)
    again = await service.request_changes(change_id=change.id, user="ULEAD1", comment=HOSTILE)

    assert asked.accepted and asked.change.status is Status.CHANGES_REQUESTED
    assert again.refusal is Refusal.NOT_PENDING  # a double click does one thing
    entry = asked.change.audit[-1]
    assert (entry.action, entry.actor, entry.details["comment"]) == (
        AuditAction.CHANGES_REQUESTED,
        "ULEAD1",
        HOSTILE,
    )
    told = [i for i in repo.intents_for(change.id) if isinstance(i.message, ChangesRequested)]
    assert [(i.channel, i.message.thread) for i in told] == [(REQUESTER, False), ("CCHANGES", True)]  # type: ignore[union-attr]
    assert await service.approvers_to_notify(change_id=change.id) == []

    form = replace(form_of(asked.change), test_plan="Canary 5% for an hour.")
    resubmitted = (await service.edit_change(change_id=change.id, user=REQUESTER, form=form)).change
    assert (resubmitted.id, resubmitted.status) == (change.id, Status.PENDING_APPROVAL)
    assert resubmitted.audit[-1].details == {
        "changes": ["Test plan added"],
        "fields": {"test_plan": {"from": "", "to": "Canary 5% for an hour."}},
        "reapproval": True,
        "was": "changes_requested",
    }
    approved = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert approved.change.status is Status.APPROVED


async def test_only_an_eligible_approver_may_request_changes_with_a_comment(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    with pytest.raises(IntakeRejected):
        await service.request_changes(change_id=change.id, user="ULEAD1", comment="  ")
    bystander = await service.request_changes(change_id=change.id, user="UCTO", comment="Not mine")
    own = await service.request_changes(change_id=change.id, user=REQUESTER, comment="Mine")

    assert (bystander.refusal, own.refusal) == (Refusal.NOT_ELIGIBLE, Refusal.OWN_REQUEST)
    stored = await service.get_change(change_id=change.id)
    assert stored.status is Status.PENDING_APPROVAL
    refused = [e.details for e in stored.audit if e.action is AuditAction.DECISION_REFUSED]
    assert [(d["decision"], d["refusal"]) for d in refused] == [("request_changes", "not_eligible"),
                                                               ("request_changes", "own_request")]  # fmt: skip


async def test_a_rejected_change_is_resubmitted_after_an_edit_keeping_its_id(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    await service.decide(
        change_id=change.id, user="ULEAD1", decision=Decision.REJECT, reason="No rollback test"
    )

    form = replace(
        form_of(await service.get_change(change_id=change.id)), rollback_plan="Redeploy 2.3; tested."
    )
    outcome = await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    assert outcome.refusal is None
    again = await service.get_change(change_id=change.id)
    assert (again.id, again.status, again.approvals) == (change.id, Status.PENDING_APPROVAL, ())
    assert actions(again) == ["submitted", "rejected", "edited", "approvals_voided"]
    assert (await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.APPROVE)).accepted
