"""Filing and moving a CR through ChangeService on the in-memory repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Category, Decision, Risk, Status
from domain.errors import ChangeNotFound, ConflictsFound
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction, StepSnapshot
from domain.ports import ChangeQuery
from domain.service import ChangeService
from tests.support.change_forms import REQUESTER, change_form, low_risk_form
from tests.support.memory_repository import MemoryChangeRepository, MemoryNotifier

WINDOW_NOTICES = ["t_minus_24h", "t_minus_1h", "t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m", "overrun"]
CHASE = ["approval_reminder", "approval_deadline", "approval_at_start"]  # a waiting change's chase


def routes(repo: MemoryChangeRepository, change_id: str) -> list[tuple[IntentKind, str | None]]:
    return [(intent.kind, intent.channel) for intent in repo.intents_for(change_id)]


async def test_a_low_risk_change_is_approved_on_submission_with_its_timeline(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock, notifier: MemoryNotifier
) -> None:
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)

    assert change.id == "CR-2026-0001"
    assert (change.status, change.risk, change.steps) == (Status.APPROVED, Risk.LOW, ())
    assert change.approved_at == clock.now()
    stored = await service.get_change(change_id=change.id)
    assert stored.status is Status.APPROVED
    assert [e.action for e in stored.audit] == [AuditAction.SUBMITTED, AuditAction.AUTO_APPROVED]
    assert routes(repo, change.id) == [(IntentKind.POST_CARD, "CCHANGES"), (IntentKind.MESSAGE, REQUESTER)]
    notices = await repo.notices(change.id)
    assert [n.key for n in notices] == WINDOW_NOTICES
    assert {n.state for n in notices} == {"pending"}
    assert notices[0].due_at == change.draft.starts_at - timedelta(hours=24)
    assert notifier.wakes == 1


async def test_a_medium_risk_change_waits_for_a_tech_lead(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    assert (change.status, change.risk) == (Status.PENDING_APPROVAL, Risk.MEDIUM)
    assert change.steps == (StepSnapshot("tech_lead", 1, ("ULEAD1", "ULEAD2")),)
    assert change.approved_at is None
    assert routes(repo, change.id) == [
        (IntentKind.POST_CARD, "CCHANGES"),
        (IntentKind.MESSAGE, REQUESTER),
        (IntentKind.DM_APPROVERS, None),
    ]
    # Nothing to announce before it is approved; only its approval is chased.
    assert [n.key for n in await repo.notices(change.id)] == CHASE
    assert await service.approvers_to_notify(change_id=change.id) == ["ULEAD1", "ULEAD2"]


async def test_approval_steps_follow_the_category_then_the_risk(
    service: ChangeService, clock: FakeClock
) -> None:
    major = await service.submit_change(
        form=change_form(clock, category="major", implementation_plan="Blue/green."), requester=REQUESTER
    )
    high = await service.submit_change(
        form=change_form(clock, impact="high", services=["redis-cache"]), requester=REQUESTER
    )

    assert [(s.role, s.count) for s in major.steps] == [("engineering_manager", 1), ("cto", 1)]
    assert high.risk is Risk.HIGH
    assert [(s.role, s.count) for s in high.steps] == [("tech_lead", 2), ("engineering_manager", 1)]
    assert high.steps[1].members == ("SMANAGERS",)  # the user group, expanded when deciding


async def test_a_standard_change_from_the_catalog_is_pre_approved(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=change_form(
            clock, category="standard", catalog="cache-clear", impact=None, likelihood=None, description=None
        ),
        requester=REQUESTER,
    )

    assert (change.status, change.draft.category, change.draft.catalog_id) == (
        Status.APPROVED,
        Category.STANDARD,
        "cache-clear",
    )
    stored = await service.get_change(change_id=change.id)
    assert "pre-approved standard change 'cache-clear'" in stored.audit[-1].details["reason"]


async def test_cr_numbers_count_up_per_year(service: ChangeService, clock: FakeClock) -> None:
    first = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    second = await service.submit_change(
        form=low_risk_form(clock, services=["database"]), requester=REQUESTER
    )
    clock.set(datetime(2027, 1, 4, 9, 0, tzinfo=UTC))
    next_year = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)

    assert [first.id, second.id, next_year.id] == ["CR-2026-0001", "CR-2026-0002", "CR-2027-0001"]


async def test_every_problem_with_a_form_is_reported_at_once_and_nothing_is_stored(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock, notifier: MemoryNotifier
) -> None:
    form = change_form(
        clock, title="  ", services=["mainframe"], rollback_plan="", starts_in=timedelta(days=-1)
    )

    with pytest.raises(IntakeRejected) as rejected:
        await service.submit_change(form=form, requester=REQUESTER)

    assert set(rejected.value.errors) == {"title", "services", "rollback_plan", "starts_at"}
    assert await repo.count_changes(ChangeQuery()) == 0
    assert (repo.outbox, repo.audit_log, notifier.wakes) == ([], [], 0)


async def test_an_overlapping_change_on_the_same_service_is_a_warning_until_acknowledged(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    first = await service.submit_change(form=change_form(clock), requester="UOTHER")
    overlapping = change_form(
        clock, title="Rotate the gateway certificates", starts_in=timedelta(days=2, minutes=30)
    )

    with pytest.raises(ConflictsFound) as found:
        await service.submit_change(form=overlapping, requester=REQUESTER)
    assert [c.change_id for c in found.value.conflicts] == [first.id]
    assert found.value.conflicts[0].services == ("api-server",)
    assert await repo.count_changes(ChangeQuery()) == 1

    overlapping.acknowledged_conflicts = (first.id,)
    second = await service.submit_change(form=overlapping, requester=REQUESTER)
    assert second.conflicts == (first.id,)
    assert (await service.get_change(change_id=second.id)).conflicts == (first.id,)


async def test_a_change_on_another_service_or_after_the_window_is_no_conflict(
    service: ChangeService, clock: FakeClock
) -> None:
    await service.submit_change(form=change_form(clock), requester="UOTHER")

    other_service = await service.submit_change(
        form=change_form(clock, services=["database"]), requester=REQUESTER
    )
    later = await service.submit_change(
        form=change_form(clock, starts_in=timedelta(days=2, hours=1)), requester=REQUESTER
    )

    assert other_service.conflicts == later.conflicts == ()


async def test_moving_an_approved_change_voids_its_approvals_and_asks_again(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    approved = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert approved.change.status is Status.APPROVED
    assert {n.state for n in await repo.notices(change.id) if n.key not in CHASE} == {"pending"}
    new_start = int((change.draft.starts_at + timedelta(days=1)).timestamp())

    outcome = await service.reschedule(
        change_id=change.id, user=REQUESTER, starts_at=new_start, ends_at=new_start + 7200
    )

    assert outcome.refusal is None
    moved = await service.get_change(change_id=change.id)
    assert moved.status is Status.PENDING_APPROVAL
    assert (moved.approvals, moved.approved_at) == ((), None)
    assert moved.draft.starts_at == change.draft.starts_at + timedelta(days=1)
    assert moved.draft.ends_at - moved.draft.starts_at == timedelta(hours=2)
    assert [e.action for e in moved.audit][-2:] == [AuditAction.RESCHEDULED, AuditAction.APPROVALS_VOIDED]
    assert moved.audit[-1].details["approvers"] == ["ULEAD1"]
    assert {n.state for n in await repo.notices(change.id) if n.key not in CHASE} == {"cancelled"}
    assert routes(repo, change.id)[-3:] == [
        (IntentKind.REFRESH_CARDS, None),
        (IntentKind.MESSAGE, "CCHANGES"),
        (IntentKind.DM_APPROVERS, None),
    ]
    again = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert again.accepted and again.change.status is Status.APPROVED


async def test_moving_a_pre_approved_change_keeps_it_approved_and_replans_its_notices(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    new_start = change.draft.starts_at + timedelta(days=3)

    outcome = await service.reschedule(
        change_id=change.id,
        user=REQUESTER,
        starts_at=int(new_start.timestamp()),
        ends_at=int(new_start.timestamp()) + 3600,
    )

    assert outcome.change.status is Status.APPROVED
    notices = await repo.notices(change.id)
    assert [n.state for n in notices] == ["cancelled"] * 7 + ["pending"] * 7
    assert [n.key for n in notices if n.state == "pending"] == WINDOW_NOTICES
    assert notices[7].due_at == new_start - timedelta(hours=24)


async def test_only_its_people_can_move_an_open_change(service: ChangeService, clock: FakeClock) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    start = int(change.draft.starts_at.timestamp()) + 3600

    bystander = await service.reschedule(
        change_id=change.id, user="UOTHER", starts_at=start, ends_at=start + 60
    )
    await service.cancel(change_id=change.id, user=REQUESTER)
    cancelled = await service.reschedule(
        change_id=change.id, user=REQUESTER, starts_at=start, ends_at=start + 60
    )

    assert bystander.refusal == "only the requester or the implementer can reschedule it"
    assert cancelled.refusal == "the change is cancelled"
    with pytest.raises(IntakeRejected):
        await service.reschedule(change_id=change.id, user=REQUESTER, starts_at=start, ends_at=start - 60)
    with pytest.raises(ChangeNotFound):
        await service.reschedule(
            change_id="CR-2026-0999", user=REQUESTER, starts_at=start, ends_at=start + 60
        )
