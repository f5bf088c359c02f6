"""Emergencies through ChangeService: declared, announced, post-approved (or chased)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import quorum
from domain.clock import FakeClock
from domain.enums import Category, Decision, Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction, PostState, StepSnapshot
from domain.policy_loader import parse_policy
from domain.service import ChangeService
from tests.support.change_forms import emergency_form, make_service
from tests.support.memory_repository import MemoryChangeRepository
from tests.support.policy_fixture import TEST_POLICY

POST_NOTICES = [f"post_reminder_{n}" for n in range(1, 6)] + ["post_deadline"]


async def test_an_emergency_is_approved_at_once_and_announced(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")

    assert (change.status, change.draft.category, change.implementer) == (
        Status.APPROVED,
        Category.EMERGENCY,
        "UDEV",
    )
    assert (change.draft.starts_at, change.draft.ends_at) == (clock.now(), clock.now() + timedelta(hours=2))
    assert (change.post_state, change.post_due_at) == (PostState.PENDING, clock.now() + timedelta(hours=24))
    assert change.post_steps == (StepSnapshot("engineering_manager", 1, ("SMANAGERS",)),)
    stored = await service.get_change(change_id=change.id)
    assert [e.action for e in stored.audit] == [
        AuditAction.SUBMITTED,
        AuditAction.EMERGENCY_DECLARED,
        AuditAction.AUTO_APPROVED,
    ]
    assert stored.audit[1].details["incident"] == "INC-42"
    assert [(i.kind, i.channel) for i in repo.intents_for(change.id)] == [
        (IntentKind.POST_CARD, "CCHANGES"),
        (IntentKind.POST_CARD, "CINCIDENTS"),
        (IntentKind.MESSAGE, "UDEV"),
        (IntentKind.DM_POST_APPROVERS, None),  # the post-approvers' cards, at declaration
        (IntentKind.ON_CALL, None),
    ]
    keys = [n.key for n in await repo.notices(change.id)]
    assert keys == [*POST_NOTICES, "t_0", "t_plus_15m", "overrun"]
    assert await service.post_approvers_to_notify(change_id=change.id) == ["UMGR1", "UMGR2"]


async def test_a_declaration_missing_what_is_broken_and_its_severity_is_refused(
    service: ChangeService, repo: MemoryChangeRepository
) -> None:
    with pytest.raises(IntakeRejected) as rejected:
        await service.declare_emergency(form=emergency_form(broken=" ", severity="P9"), requester="UDEV")

    assert set(rejected.value.errors) == {"broken", "severity"}
    assert repo.outbox == []


async def test_a_manager_post_approves_but_not_their_own_emergency(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UMGR1")
    clock.advance(timedelta(hours=3))

    own = await service.post_decide(change_id=change.id, user="UMGR1", decision=Decision.APPROVE)
    outcome = await service.post_decide(change_id=change.id, user="UMGR2", decision=Decision.APPROVE)
    again = await service.post_decide(change_id=change.id, user="UMGR2", decision=Decision.APPROVE)

    assert own.refusal is quorum.Refusal.OWN_REQUEST
    assert outcome.accepted
    assert outcome.change.post_state is PostState.APPROVED
    assert [(a.user, a.decision) for a in outcome.change.post_approvals] == [("UMGR2", Decision.APPROVE)]
    assert outcome.change.approvals == ()  # the pre-approval list is apart
    assert again.refusal is quorum.Refusal.NOT_PENDING
    stored = await service.get_change(change_id=change.id)
    refused = [e for e in stored.audit if e.action is AuditAction.DECISION_REFUSED]
    assert [(e.actor, e.details["phase"]) for e in refused] == [("UMGR1", "post")]
    assert [e.action for e in stored.audit][-2:] == [
        AuditAction.POST_APPROVAL_RECORDED,
        AuditAction.POST_APPROVED,
    ]
    assert stored.audit[-2].details["late"] is False
    assert await service.post_approvers_to_notify(change_id=change.id) == []


async def test_a_refused_post_approval_asks_for_a_review(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")

    with pytest.raises(IntakeRejected):
        await service.post_decide(change_id=change.id, user="UMGR1", decision=Decision.REJECT)
    outcome = await service.post_decide(
        change_id=change.id, user="UMGR1", decision=Decision.REJECT, reason="Should have waited for the CAB"
    )

    stored = await service.get_change(change_id=change.id)
    assert outcome.change.post_state is PostState.REJECTED
    assert stored.review is not None
    assert (stored.review.reason, stored.review.due_at) == (
        "its post-approval was refused",
        clock.now() + timedelta(hours=24),
    )
    assert [e.action for e in stored.audit][-2:] == [AuditAction.POST_REJECTED, AuditAction.REVIEW_REQUESTED]
    assert (IntentKind.MESSAGE, "UDEV") in [(i.kind, i.channel) for i in repo.intents_for(change.id)]


async def test_an_unanswered_post_approval_is_chased_then_overdue_then_late(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.process_due_notices()  # t_0, due at once
    for _ in range(6):  # every four hours: the five reminders, then the 24 h deadline
        clock.advance(timedelta(hours=4))
        await service.process_due_notices()

    post = {n.key: n.state for n in await repo.notices(change.id) if n.key.startswith("post_")}
    assert post == dict.fromkeys(POST_NOTICES, "sent")
    stored = await service.get_change(change_id=change.id)
    assert stored.post_state is PostState.OVERDUE
    assert AuditAction.POST_APPROVAL_OVERDUE in [e.action for e in stored.audit]
    kinds = [i.kind for i in repo.intents_for(change.id)]
    assert kinds.count(IntentKind.DM_POST_APPROVERS) == 1 + 6  # the cards at declaration, then the chase
    assert kinds.count(IntentKind.DM_ROLE) == 1

    late = await service.post_decide(change_id=change.id, user="UMGR2", decision=Decision.APPROVE)

    assert late.change.post_state is PostState.APPROVED
    trail = (await service.get_change(change_id=change.id)).audit
    assert trail[-2].details["late"] is True


async def test_an_approved_post_approval_stops_the_chase(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    clock.advance(timedelta(hours=1))
    await service.post_decide(change_id=change.id, user="UMGR1", decision=Decision.APPROVE)
    clock.advance(timedelta(hours=4))

    await service.process_due_notices()

    reminder = next(n for n in await repo.notices(change.id) if n.key == "post_reminder_1")
    assert (reminder.state, reminder.note) == ("skipped", "post-approval is approved")
    # only the cards at declaration: no reminder
    assert [i.kind for i in repo.intents_for(change.id)].count(IntentKind.DM_POST_APPROVERS) == 1


async def test_with_an_on_call_go_ahead_the_on_call_engineer_approves_first(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    policy = parse_policy(TEST_POLICY.replace("emergency:\n", "emergency:\n  go_ahead: on_call\n"))
    service = make_service(repo, clock, policy=policy)
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    assert (change.status, change.steps) == (Status.PENDING_APPROVAL, (StepSnapshot("on_call", 1, ()),))
    assert "t_0" not in [n.key for n in await repo.notices(change.id)]

    resolved = await service.assign_on_call(
        change_id=change.id, users=["UDEV", "UONCALL"], source="pagerduty", reason=None
    )

    assert resolved.steps == (StepSnapshot("on_call", 1, ("UONCALL",)),)  # not the requester
    assert resolved.audit[-1].action is AuditAction.ON_CALL_RESOLVED  # shown on the card
    assert [(i.kind, i.channel) for i in repo.intents_for(change.id)][-3:] == [
        (IntentKind.DM_CARD, "UONCALL"),
        (IntentKind.MESSAGE, "CINCIDENTS"),
        (IntentKind.REFRESH_CARDS, None),
    ]
    go = await service.decide(change_id=change.id, user="UONCALL", decision=Decision.APPROVE)
    assert go.accepted and go.change.status is Status.APPROVED
    assert "t_0" in [n.key for n in await repo.notices(change.id)]
