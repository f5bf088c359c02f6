"""The in-memory repository against the real one: the same scenarios, through the same
port (and through ChangeService), on MemoryChangeRepository and on SqlChangeRepository
over a migrated SQLite database. Where they differ, the fake is wrong."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Decision, Status
from domain.model import AuditAction, PostState
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import (
    CTO,
    IMPLEMENTER,
    REQUESTER,
    change_form,
    emergency_form,
    low_risk_form,
    make_service,
)
from tests.support.contract_backends import Backend


@pytest.fixture
def service(backend: Backend, clock: FakeClock) -> ChangeService:
    return make_service(backend.repo, clock)


# --- through ChangeService ---------------------------------------------------------------
async def test_filing_and_approving(backend: Backend, service: ChangeService, clock: FakeClock) -> None:
    low = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    medium = await service.submit_change(form=change_form(clock, services=["database"]), requester=REQUESTER)
    refused = await service.decide(change_id=medium.id, user=REQUESTER, decision=Decision.APPROVE)
    approved = await service.decide(change_id=medium.id, user="ULEAD1", decision=Decision.APPROVE)

    assert (low.id, medium.id) == ("CR-2026-0001", "CR-2026-0002")
    assert refused.refusal is not None and approved.accepted
    stored = await service.get_change(change_id=medium.id)
    assert (stored.status, stored.version, stored.approved_at) == (Status.APPROVED, 2, clock.now())
    assert [(a.user, a.step_index) for a in stored.approvals] == [("ULEAD1", 0)]
    assert [e.action for e in stored.audit] == [
        AuditAction.SUBMITTED,
        AuditAction.DECISION_REFUSED,
        AuditAction.APPROVAL_RECORDED,
        AuditAction.APPROVED,
    ]
    assert [e.action for e in (await service.get_change(change_id=medium.id, history=False)).audit] == []
    assert [row[:3] for row in await backend.outbox()] == [
        ("post_card", "CCHANGES", low.id),
        ("message", REQUESTER, low.id),
        ("post_card", "CCHANGES", medium.id),
        ("message", REQUESTER, medium.id),
        ("dm_approvers", None, medium.id),
        ("refresh_cards", None, medium.id),
        ("message", REQUESTER, medium.id),
    ]
    notices = [n[:2] for n in await backend.notices(medium.id)]
    assert [n for n in notices if not n[0].startswith("approval_")] == [
        (key, "pending")
        for key in ("t_minus_24h", "t_minus_1h", "t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m", "overrun")
    ]
    assert {n[1] for n in notices if n[0].startswith("approval_")} == {"cancelled"}  # approved: not chased


async def test_a_double_click_is_recorded_once(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock, impact="high"), requester=REQUESTER)

    outcomes = await asyncio.gather(
        *(service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE) for _ in range(3))
    )

    assert sorted(str(o.refusal) for o in outcomes) == ["None", "already_decided", "already_decided"]
    stored = await service.get_change(change_id=change.id)
    assert ([a.user for a in stored.approvals], stored.version) == (["ULEAD1"], 2)


async def test_moving_voids_pre_approvals_and_replans(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.APPROVE)
    start = int((change.draft.starts_at + timedelta(days=1)).timestamp())

    await service.reschedule(change_id=change.id, user=REQUESTER, starts_at=start, ends_at=start + 3600)

    stored = await service.get_change(change_id=change.id)
    assert (stored.status, stored.approvals, stored.approved_at) == (Status.PENDING_APPROVAL, (), None)
    notices = await backend.notices(change.id)
    assert {n[1] for n in notices if not n[0].startswith("approval_")} == {"cancelled"}
    assert [n[0] for n in notices if n[1] == "pending"] == [  # chased again, from the move
        "approval_reminder",
        "approval_deadline",
        "approval_at_start",
    ]
    assert (await backend.outbox())[-1][:4] == (
        "dm_approvers",
        None,
        change.id,
        f"{change.id}:dm-approvers:2",
    )


async def test_the_notice_pass_sends_once_and_skips_what_went_stale(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    clock.set(change.draft.starts_at + timedelta(minutes=30))

    assert await service.process_due_notices() == 6
    assert await service.process_due_notices() == 0

    assert [(*n[:2], n[4]) for n in await backend.notices(change.id)] == [
        ("t_minus_24h", "skipped", False),
        ("t_minus_1h", "skipped", False),
        ("t_minus_15m", "skipped", False),
        ("t_0", "sent", True),
        ("t_plus_15m", "sent", True),
        ("t_plus_30m", "sent", False),
        ("overrun", "pending", False),
    ]
    assert await service.seconds_to_next_notice() == timedelta(minutes=30).total_seconds()
    assert [row[3] for row in (await backend.outbox())[2:]] == [
        "notice:4:thread",
        "notice:4:implementer",
        "notice:5:thread",
        "notice:5:implementer",
        "notice:6:implementer",
    ]


async def test_emergency_post_approval_and_its_deadline(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    overdue = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    decided = await service.declare_emergency(form=emergency_form(services=["database"]), requester="UDEV")
    await service.post_decide(change_id=decided.id, user="UMGR1", decision=Decision.APPROVE)
    clock.advance(timedelta(hours=25))

    await service.process_due_notices()

    assert (await service.get_change(change_id=overdue.id)).post_state is PostState.OVERDUE
    approved = await service.get_change(change_id=decided.id)
    assert approved.post_state is PostState.APPROVED
    assert [(a.user, a.phase.value) for a in approved.post_approvals] == [("UMGR1", "post")]
    states = {n[0]: n[1] for n in await backend.notices(decided.id)}
    assert states["post_deadline"] == "skipped"


async def test_failure_review_and_report(backend: Backend, service: ChangeService, clock: FakeClock) -> None:
    change = await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    clock.set(change.draft.starts_at)
    await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START)
    await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Oops"
    )
    written = await service.submit_review(change_id=change.id, user=IMPLEMENTER, answers={"result": "failed"})
    again = await service.submit_review(change_id=change.id, user=IMPLEMENTER, answers={"result": "failed"})

    assert written.refusal is None and again.refusal == "its review is already written"
    stored = await service.get_change(change_id=change.id)
    assert stored.review is not None and stored.review.answers == {"result": "failed"}
    span = (clock.now() - timedelta(days=3), clock.now() + timedelta(days=3))
    assert await backend.repo.review_counts(start=span[0], end=span[1]) == (1, 1)
    history = await backend.repo.changes_with_history(start=span[0], end=span[1])
    assert [(c.id, c.review, len(c.audit)) for c in history] == [(change.id, None, len(stored.audit))]


async def test_freezes_and_the_cr_less_audit_chain(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    first, _ = await service.start_freeze(user=CTO, reason="Release")
    assert (await service.start_freeze(user=CTO, reason="Again"))[0] is None
    clock.advance(timedelta(hours=1))
    ended, _ = await service.end_freeze(user=CTO)
    clock.advance(timedelta(hours=1))
    second, _ = await service.start_freeze(user=CTO, reason="Second")
    assert first is not None and ended is not None and second is not None

    found = await backend.repo.freezes(
        start=clock.now() - timedelta(hours=3), end=clock.now() + timedelta(hours=1)
    )
    assert [(f.id, f.reason, f.ended_at) for f in found] == [
        (first.id, "Release", ended.ended_at),
        (second.id, "Second", None),
    ]
    assert await backend.repo.freezes(start=ended.ended_at or clock.now(), end=second.started_at) == []
    assert [row[:3] for row in await backend.audit()] == [
        (None, CTO, "freeze_started"),
        (None, CTO, "freeze_ended"),
        (None, CTO, "freeze_started"),
    ]


async def test_a_freeze_with_an_end_ends_once_and_tells_the_owners(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    inside = await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    until = (clock.now() + timedelta(days=3)).date()
    freeze, _ = await service.start_freeze(user=CTO, reason="Holidays", until=until)
    assert freeze is not None and freeze.ended_at is not None
    assert (await service.start_freeze(user=CTO, reason="Again"))[0] is None  # on until its end
    assert [row[:3] for row in (await backend.outbox())[-4:]] == [
        ("message", "CCHANGES", None),
        ("message", IMPLEMENTER, inside.id),
        ("message", REQUESTER, inside.id),
        ("refresh_cards", None, inside.id),  # its card names the freeze
    ]
    assert await service.end_due_freezes() == 0
    clock.set(freeze.ended_at)
    assert (await service.end_freeze(user=CTO))[0] is None  # over: nothing to lift
    assert await service.end_due_freezes() == 1
    assert await service.end_due_freezes() == 0
    assert [row[1:3] for row in await backend.audit()][-2:] == [
        (CTO, "freeze_started"),
        ("changebot", "freeze_ended"),
    ]
    again, _ = await service.start_freeze(user=CTO, reason="Next")
    assert again is not None and again.ended_at is None
