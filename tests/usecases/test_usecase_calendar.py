"""Freezes, the calendar, lists and the digest through ChangeService."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import quorum
from domain.calendar import days_range
from domain.clock import FakeClock
from domain.enums import Decision, Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction
from domain.ports import ListScope
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import CTO, IMPLEMENTER, REQUESTER, change_form, emergency_form, low_risk_form
from tests.support.memory_repository import MemoryChangeRepository


async def test_only_the_freeze_roles_start_and_end_a_freeze(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    refused, why = await service.start_freeze(user="ULEAD1", reason="Black Friday")
    freeze, none = await service.start_freeze(user=CTO, reason="  Black Friday  ")
    twice, already = await service.start_freeze(user="UMGR1", reason="Again")

    assert (
        refused is None
        and why == "only these roles can declare or lift a change freeze: Engineering manager, CTO"
    )
    assert freeze is not None and none is None
    assert (freeze.reason, freeze.started_by, freeze.started_at, freeze.ended_at) == (
        "Black Friday",
        CTO,
        clock.now(),
        None,
    )
    assert twice is None and already is not None and "already on" in already
    clock.advance(timedelta(hours=5))

    ended, _ = await service.end_freeze(user="UMGR1")  # an engineering manager through the user group
    again, nothing = await service.end_freeze(user=CTO)

    assert ended is not None and (ended.id, ended.ended_at) == (freeze.id, clock.now())
    assert again is None and nothing == "there is no change freeze on"
    assert [(r.change_id, r.entry.action) for r in repo.audit_log] == [
        (None, AuditAction.FREEZE_STARTED),
        (None, AuditAction.FREEZE_ENDED),
    ]
    assert [(i.kind, i.channel, i.change_id) for i in repo.intents] == [
        (IntentKind.MESSAGE, "CCHANGES", None)
    ] * 2
    span = (clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    assert await service.active_freezes(start=span[0], end=span[1]) == [ended]


async def test_a_freeze_refuses_new_changes_unless_an_exception_is_asked_for(
    service: ChangeService, clock: FakeClock
) -> None:
    await service.start_freeze(user=CTO, reason="Black Friday")

    with pytest.raises(IntakeRejected) as rejected:
        await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    assert "touches a blackout" in rejected.value.errors["starts_at"]
    with pytest.raises(IntakeRejected) as no_reason:
        await service.submit_change(form=low_risk_form(clock, exception_requested=True), requester=REQUESTER)
    assert set(no_reason.value.errors) == {"exception_reason"}

    change = await service.submit_change(
        form=low_risk_form(clock, exception_requested=True, exception_reason="Security fix"),
        requester=REQUESTER,
    )

    assert change.status is Status.PENDING_APPROVAL  # low risk, but the exception needs a manager
    assert [(s.role, s.purpose) for s in change.steps] == [("engineering_manager", "exception")]
    assert change.audit[-1].action is AuditAction.EXCEPTION_REQUESTED
    assert (await service.get_change(change_id=change.id, history=False)).audit[-1].details == {
        "reason": "Security fix"
    }


async def test_a_freeze_declared_after_approval_stops_the_start_but_not_an_emergency(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    clock.set(change.draft.starts_at)
    await service.start_freeze(user=CTO, reason="Incident in progress")

    blocked = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START
    )
    emergency = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    fix = await service.record_progress(change_id=emergency.id, user="UDEV", action=ProgressAction.START)

    assert blocked.refusal is not None and blocked.refusal.startswith("a change freeze is on")
    assert blocked.change.status is Status.APPROVED
    assert fix.refusal is None and fix.change.status is Status.IN_PROGRESS


async def test_the_calendar_shows_each_section_and_the_freezes(
    service: ChangeService, clock: FakeClock
) -> None:
    pending = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    approved = await service.submit_change(
        form=low_risk_form(clock, services=["database"], starts_in=timedelta(days=1)), requester=REQUESTER
    )
    later = await service.submit_change(
        form=low_risk_form(clock, services=["redis-cache"], starts_in=timedelta(days=20)), requester=REQUESTER
    )
    await service.cancel(
        change_id=(
            await service.submit_change(
                form=low_risk_form(clock, services=["kubernetes"]), requester=REQUESTER
            )
        ).id,
        user=REQUESTER,
    )
    freeze, _ = await service.start_freeze(user=CTO, reason="Release week")
    today = clock.now().astimezone(service.policy.zone).date()

    view = await service.calendar(span=days_range(today, 7, service.policy.zone, "This week"))

    assert [c.id for c in view.scheduled] == [
        approved.id,
        pending.id,
    ]  # by start; no cancelled, nothing later
    assert view.scheduled.total == 2
    assert [c.id for c in view.awaiting_approval] == [pending.id]
    assert list(view.in_progress) == list(view.overdue) == list(view.post_approval_overdue) == []
    assert view.freezes == [freeze]
    assert later.id not in [c.id for c in view.scheduled]


async def test_lists_are_paged_with_their_true_total(service: ChangeService, clock: FakeClock) -> None:
    for hours in range(25):
        await service.submit_change(
            form=low_risk_form(clock, starts_in=timedelta(days=2, hours=2 * hours)), requester=REQUESTER
        )
    await service.submit_change(form=change_form(clock, services=["database"]), requester="UOTHER")

    first = await service.list_changes(scope=ListScope.MINE, user=REQUESTER)
    second = await service.list_changes(scope=ListScope.MINE, user=REQUESTER, page=2)
    past = await service.list_changes(scope=ListScope.MINE, user=REQUESTER, page=3)
    pending = await service.list_changes(scope=ListScope.PENDING, user=REQUESTER)

    assert (len(first.items), first.total, first.pages) == (20, 25, 2)
    assert first.items[0].id == "CR-2026-0025"  # my own list: newest first
    assert [c.id for c in second.items] == [f"CR-2026-{n:04d}" for n in range(5, 0, -1)]
    assert past.past_end and past.total == 25
    assert [(c.id, c.requester) for c in pending.items] == [("CR-2026-0026", "UOTHER")]


async def test_the_home_shows_what_waits_for_the_user(service: ChangeService, clock: FakeClock) -> None:
    mine = await service.submit_change(form=change_form(clock), requester="ULEAD1")
    theirs = await service.submit_change(form=change_form(clock, services=["database"]), requester=REQUESTER)
    emergency = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.decide(change_id=theirs.id, user="ULEAD2", decision=Decision.APPROVE)
    other = await service.submit_change(
        form=change_form(clock, services=["redis-cache"]), requester=REQUESTER
    )

    lead = await service.home(user="ULEAD1")
    manager = await service.home(user="UMGR1")

    assert [c.id for c in lead.mine] == [mine.id]
    assert [c.id for c in lead.awaiting_me] == [other.id]  # not their own, not the approved one
    assert [c.id for c in manager.awaiting_me] == [emergency.id]  # its post-approval
    assert await service.check_decision(change_id=mine.id, user="ULEAD1") is quorum.Refusal.OWN_REQUEST


async def test_the_digest_is_posted_once_a_day(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    assert await service.run_digest() is False  # 07:00: not yet
    clock.advance(timedelta(hours=2, minutes=1))

    assert await service.run_digest() is True
    assert await service.run_digest() is False
    assert [(i.kind, i.channel, i.change_id) for i in repo.intents] == [
        (IntentKind.MESSAGE, "CCHANGES", None)
    ]
    assert [r.entry.action for r in repo.audit_log] == [AuditAction.DIGEST_POSTED]


async def test_a_first_start_posts_no_digest_but_a_restart_after_a_miss_does(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    clock.advance(timedelta(hours=3))

    assert await service.run_digest(catch_up=True) is False  # a new database missed nothing
    clock.advance(timedelta(days=1))
    assert await service.run_digest(catch_up=True) is True
    assert len(repo.intents) == 1
