"""Carrying a change out through ChangeService: the start gate, overrides, outcomes, reviews."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction, Change
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import CTO, IMPLEMENTER, REQUESTER, low_risk_form, make_service, policy_with
from tests.support.memory_repository import MemoryChangeRepository


async def approved(service: ChangeService, clock: FakeClock) -> Change:
    """Pre-approved, carried out by UIMPL, window in two days for an hour."""
    return await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )


def actions(change: Change) -> list[AuditAction]:
    return [entry.action for entry in change.audit]


async def test_starting_before_the_window_is_refused_and_audited(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await approved(service, clock)

    outcome = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START
    )

    assert outcome.refusal is not None and "its approved window opens" in outcome.refusal
    stored = await service.get_change(change_id=change.id)
    assert (stored.status, stored.started_at, stored.version) == (Status.APPROVED, None, 1)
    assert stored.audit[-1].action is AuditAction.ACTION_REFUSED
    assert stored.audit[-1].details["refusal"] == outcome.refusal


async def test_the_implementer_starts_in_the_window_and_completes(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at - timedelta(minutes=10))  # within the early tolerance

    started = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START
    )
    assert started.refusal is None
    assert (started.change.status, started.change.started_at) == (Status.IN_PROGRESS, clock.now())
    assert [(i.kind, i.channel) for i in repo.intents_for(change.id)][-2:] == [
        (IntentKind.REFRESH_CARDS, None),
        (IntentKind.MESSAGE, "CCHANGES"),
    ]
    clock.advance(timedelta(minutes=40))

    done = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.COMPLETE, notes="All green"
    )

    stored = await service.get_change(change_id=change.id)
    assert done.refusal is None
    assert (stored.status, stored.finished_at, stored.outcome_notes) == (
        Status.COMPLETED,
        clock.now(),
        "All green",
    )
    assert actions(stored)[-2:] == [AuditAction.STARTED, AuditAction.COMPLETED]
    assert stored.review is None  # a normal change that went well needs none
    channels = [i.channel for i in repo.intents_for(change.id) if i.kind is IntentKind.MESSAGE][-3:]
    assert channels == ["CCHANGES", "CSTAKE", REQUESTER]  # thread, stakeholders, the requester
    pending = [(n.key, n.due_at) for n in await repo.notices(change.id) if n.state == "pending"]
    assert pending == [("monitoring_end", clock.now() + timedelta(hours=1))]


async def test_completing_an_unstarted_change_records_the_start_too(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at + timedelta(minutes=5))

    outcome = await service.record_progress(
        change_id=change.id, user=REQUESTER, action=ProgressAction.COMPLETE
    )

    stored = await service.get_change(change_id=change.id)
    assert outcome.refusal is None
    assert stored.started_at == stored.finished_at == clock.now()
    assert actions(stored)[-2:] == [AuditAction.STARTED, AuditAction.COMPLETED]
    assert stored.audit[-2].details["implicit"] is True


async def test_an_override_role_starts_early_with_a_reason(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = make_service(repo, clock, policy=policy_with("start_override_roles: [cto]\n"))
    change = await approved(service, clock)

    without = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START
    )
    not_allowed = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START, override="Customer asked"
    )
    overridden = await service.record_progress(
        change_id=change.id, user=CTO, action=ProgressAction.START, override="Fix needed before the sale"
    )

    assert without.refusal is not None and "CTO can start it anyway" in without.refusal
    assert not_allowed.refusal is not None and "only CTO can start it anyway" in not_allowed.refusal
    assert overridden.refusal is None
    stored = await service.get_change(change_id=change.id)
    assert stored.status is Status.IN_PROGRESS
    assert actions(stored)[-2:] == [AuditAction.START_OVERRIDDEN, AuditAction.STARTED]
    assert stored.audit[-2].details["reason"] == "Fix needed before the sale"
    assert stored.audit[-2].details["kind"] == "early"


async def test_only_its_people_carry_a_change_out(service: ChangeService, clock: FakeClock) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)

    outcome = await service.record_progress(change_id=change.id, user="UOTHER", action=ProgressAction.START)

    assert outcome.refusal == f"only the implementer <@{IMPLEMENTER}> or the requester can do that"
    stored = await service.get_change(change_id=change.id)
    assert stored.status is Status.APPROVED
    assert stored.audit[-1].action is AuditAction.ACTION_REFUSED


async def test_a_failure_needs_notes_and_asks_for_a_review(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)
    await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START)

    with pytest.raises(IntakeRejected):
        await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL)
    outcome = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Timeouts"
    )

    stored = await service.get_change(change_id=change.id)
    assert outcome.refusal is None
    assert stored.status is Status.FAILED
    assert stored.review is not None
    assert (stored.review.reason, stored.review.due_at) == (
        "the change failed",
        clock.now() + timedelta(hours=48),
    )
    assert actions(stored)[-2:] == [AuditAction.FAILED, AuditAction.REVIEW_REQUESTED]
    assert (IntentKind.MESSAGE, IMPLEMENTER) in [(i.kind, i.channel) for i in repo.intents_for(change.id)]
    pending = [n.key for n in await repo.notices(change.id) if n.state == "pending"]
    assert pending == ["review_reminder", "review_deadline"]


async def test_the_review_is_written_once(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)
    await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Timeouts"
    )
    clock.advance(timedelta(hours=3))

    with pytest.raises(IntakeRejected):
        await service.submit_review(change_id=change.id, user=IMPLEMENTER, answers={"result": " "})
    bystander = await service.submit_review(change_id=change.id, user="UOTHER", answers={"result": "failed"})
    written = await service.submit_review(
        change_id=change.id, user=IMPLEMENTER, answers={"result": "failed", "lessons": "Load test first"}
    )
    again = await service.submit_review(change_id=change.id, user=REQUESTER, answers={"result": "failed"})

    assert bystander.refusal == "only the implementer or the requester writes the review"
    assert written.refusal is None
    assert written.change.review is not None and written.change.review.done
    assert written.change.review.answers == {"result": "failed", "lessons": "Load test first"}
    trail = (await service.get_change(change_id=change.id)).audit
    assert trail[-1].action is AuditAction.REVIEW_SUBMITTED
    assert trail[-1].details["on_time"] is True
    assert again.refusal == "its review is already written"
    assert await repo.review_counts(
        start=clock.now() - timedelta(days=1), end=clock.now() + timedelta(days=3)
    ) == (
        1,
        1,
    )


async def test_a_cancelled_change_drops_its_notices(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)

    bystander = await service.cancel(change_id=change.id, user="UOTHER")
    outcome = await service.cancel(change_id=change.id, user=REQUESTER, reason="Not needed any more")
    again = await service.cancel(change_id=change.id, user=REQUESTER)

    assert bystander.refusal == "only the requester or the implementer can cancel it"
    assert outcome.refusal is None and outcome.change.status is Status.CANCELLED
    assert again.refusal == "the change is cancelled"
    stored = await service.get_change(change_id=change.id)
    assert stored.audit[-1].action is AuditAction.CANCELLED
    assert stored.audit[-1].details["reason"] == "Not needed any more"
    assert {n.state for n in await repo.notices(change.id)} == {"cancelled"}


async def test_a_finished_change_is_closed_and_then_stays_closed(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)

    early = await service.record_progress(change_id=change.id, user=REQUESTER, action=ProgressAction.CLOSE)
    await service.record_progress(change_id=change.id, user=REQUESTER, action=ProgressAction.COMPLETE)
    closed = await service.record_progress(change_id=change.id, user=REQUESTER, action=ProgressAction.CLOSE)
    cancel = await service.cancel(change_id=change.id, user=REQUESTER)

    assert early.refusal == "the change is approved, so it cannot close"
    assert closed.refusal is None and closed.change.status is Status.CLOSED
    assert cancel.refusal == "the change is closed"
