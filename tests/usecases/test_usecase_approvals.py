"""Approvals through ChangeService: quorum, separation of duties, refusals, races."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from domain import quorum
from domain.clock import FakeClock
from domain.enums import Decision, Status
from domain.errors import DecisionConflict
from domain.intake import IntakeRejected
from domain.intents import Intent, IntentKind
from domain.model import AuditAction, AuditEntry, Change
from domain.ports import ChangeUpdate
from domain.retry import WRITE_ATTEMPTS
from domain.service import ChangeService
from tests.support.change_forms import REQUESTER, change_form, make_service
from tests.support.memory_repository import MemoryChangeRepository


async def high_risk(service: ChangeService, clock: FakeClock, **overrides: Any) -> Change:
    """Two tech leads and one engineering manager (a user group) must approve."""
    return await service.submit_change(
        form=change_form(clock, impact="high", **overrides), requester=REQUESTER
    )


def actions(change: Change) -> list[AuditAction]:
    return [entry.action for entry in change.audit]


async def test_one_tech_lead_approves_a_medium_risk_change(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    clock.advance(timedelta(minutes=10))

    outcome = await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.APPROVE)

    assert outcome.accepted
    stored = await service.get_change(change_id=change.id)
    assert (stored.status, stored.approved_at, stored.version) == (Status.APPROVED, clock.now(), 2)
    assert [(a.user, a.decision, a.step_index) for a in stored.approvals] == [("ULEAD2", Decision.APPROVE, 0)]
    assert actions(stored)[-2:] == [AuditAction.APPROVAL_RECORDED, AuditAction.APPROVED]
    assert [(i.kind, i.channel) for i in repo.intents_for(change.id)][-2:] == [
        (IntentKind.REFRESH_CARDS, None),
        (IntentKind.MESSAGE, REQUESTER),
    ]
    pending = [n.key for n in await repo.notices(change.id) if n.state == "pending"]
    assert pending[:2] == ["t_minus_24h", "t_minus_1h"]


async def test_a_high_risk_change_needs_every_step_filled(service: ChangeService, clock: FakeClock) -> None:
    change = await high_risk(service, clock)

    first = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    manager = await service.decide(change_id=change.id, user="UMGR2", decision=Decision.APPROVE)
    assert first.change.status is manager.change.status is Status.PENDING_APPROVAL
    assert await service.approvers_to_notify(change_id=change.id) == ["ULEAD2"]

    last = await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.APPROVE)

    assert last.change.status is Status.APPROVED
    assert [(a.user, a.step_index) for a in last.change.approvals] == [
        ("ULEAD1", 0),
        ("UMGR2", 1),
        ("ULEAD2", 0),
    ]
    assert await service.approvers_to_notify(change_id=change.id) == []


async def test_a_member_of_a_step_that_is_already_full_is_refused(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await high_risk(service, clock)
    await service.decide(change_id=change.id, user="UMGR1", decision=Decision.APPROVE)

    outcome = await service.decide(change_id=change.id, user="UMGR2", decision=Decision.APPROVE)

    assert outcome.refusal is quorum.Refusal.STEPS_COMPLETE
    assert len(outcome.change.approvals) == 1


async def test_the_requester_cannot_decide_and_the_refusal_is_audited(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester="ULEAD1")
    intents_before = len(repo.outbox)

    outcome = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    assert outcome.refusal is quorum.Refusal.OWN_REQUEST
    stored = await service.get_change(change_id=change.id)
    assert (stored.status, stored.approvals, stored.version) == (Status.PENDING_APPROVAL, (), 1)
    refused = stored.audit[-1]
    assert (refused.actor, refused.action) == ("ULEAD1", AuditAction.DECISION_REFUSED)
    assert refused.details["refusal"] == "own_request"
    assert len(repo.outbox) == intents_before
    assert await service.check_decision(change_id=change.id, user="ULEAD1") is quorum.Refusal.OWN_REQUEST
    assert await service.check_decision(change_id=change.id, user="ULEAD2") is None


async def test_the_implementer_cannot_approve_their_own_change(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock, implementer="ULEAD1"), requester=REQUESTER)

    refused = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    accepted = await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.APPROVE)

    assert refused.refusal is quorum.Refusal.OWN_IMPLEMENTATION
    assert accepted.accepted and accepted.change.status is Status.APPROVED
    stored = await service.get_change(change_id=change.id)
    assert [e.details.get("refusal") for e in stored.audit if e.action is AuditAction.DECISION_REFUSED] == [
        "own_implementation"
    ]
    assert await service.approvers_to_notify(change_id=change.id) == []


async def test_a_bystanders_clicks_are_audited_once_a_minute(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    for _ in range(3):
        outcome = await service.decide(change_id=change.id, user="UOTHER", decision=Decision.APPROVE)
        assert outcome.refusal is quorum.Refusal.NOT_ELIGIBLE
    clock.advance(timedelta(minutes=1))
    await service.decide(change_id=change.id, user="UOTHER", decision=Decision.APPROVE)

    stored = await service.get_change(change_id=change.id)
    refusals = [e for e in stored.audit if e.action is AuditAction.DECISION_REFUSED]
    assert [e.details.get("repeats_not_written") for e in refusals] == [None, 2]


async def test_deciding_twice_changes_nothing_the_second_time(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await high_risk(service, clock)
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    audit_before, intents_before = len(repo.audit_log), len(repo.outbox)

    again = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    assert again.refusal is quorum.Refusal.ALREADY_DECIDED
    assert len(again.change.approvals) == 1
    assert (len(repo.audit_log), len(repo.outbox)) == (audit_before, intents_before)


async def test_a_double_click_racing_itself_is_recorded_once(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await high_risk(service, clock)

    outcomes = await asyncio.gather(
        service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE),
        service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE),
    )

    assert sorted(str(o.refusal) for o in outcomes) == ["None", "already_decided"]
    stored = await service.get_change(change_id=change.id)
    assert [a.user for a in stored.approvals] == ["ULEAD1"]
    assert actions(stored).count(AuditAction.APPROVAL_RECORDED) == 1


async def test_a_rejection_needs_a_reason_and_ends_the_change(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await high_risk(service, clock)
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    with pytest.raises(IntakeRejected) as rejected:
        await service.decide(change_id=change.id, user="ULEAD2", decision=Decision.REJECT, reason="  ")
    assert set(rejected.value.errors) == {"reason"}

    outcome = await service.decide(
        change_id=change.id, user="ULEAD2", decision=Decision.REJECT, reason="No rollback tested"
    )

    assert outcome.change.status is Status.REJECTED
    assert outcome.change.approvals[-1].reason == "No rollback tested"
    stored = await service.get_change(change_id=change.id)
    assert stored.audit[-1].action is AuditAction.REJECTED
    late = await service.decide(change_id=change.id, user="UMGR1", decision=Decision.APPROVE)
    assert late.refusal is quorum.Refusal.NOT_PENDING


class RacingRepository(MemoryChangeRepository):
    """Another replica writes to the CR just before each of our next `races` writes, so
    they find it at a newer version and lose."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def update_change(
        self,
        *,
        change_id: str,
        expected_version: int,
        update: ChangeUpdate,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        if self.races > 0:
            self.races -= 1
            current = await self.get_change(change_id)
            assert current is not None
            await super().update_change(
                change_id=change_id,
                expected_version=current.version,
                update=ChangeUpdate(at=update.at),
                audit=[],
                intents=[],
            )
        return await super().update_change(
            change_id=change_id,
            expected_version=expected_version,
            update=update,
            audit=audit,
            intents=intents,
        )


async def test_a_decision_that_lost_a_race_is_decided_again_on_the_fresh_state(clock: FakeClock) -> None:
    repo = RacingRepository(races=2)
    service = make_service(repo, clock)
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    outcome = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    assert outcome.accepted
    assert outcome.change.version == 4  # two writes by the other replica, then ours
    assert [a.user for a in outcome.change.approvals] == ["ULEAD1"]
    assert actions(await service.get_change(change_id=change.id)).count(AuditAction.APPROVAL_RECORDED) == 1


async def test_a_change_that_keeps_moving_gives_up_with_a_decision_conflict(clock: FakeClock) -> None:
    repo = RacingRepository(races=WRITE_ATTEMPTS)
    service = make_service(repo, clock)
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)

    with pytest.raises(DecisionConflict):
        await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    stored = await service.get_change(change_id=change.id)
    assert (stored.status, stored.approvals) == (Status.PENDING_APPROVAL, ())
