"""The approval chase, delegation and rule-added review steps through ChangeService, on the
in-memory repository and a fake clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.clock import FakeClock
from domain.delegation import Approver
from domain.enums import Decision, Status
from domain.intents import IntentKind
from domain.messages import ApprovalChase, DelegationNews
from domain.model import AuditAction, Change
from domain.policy import Policy
from domain.policy_loader import parse_policy
from domain.service import ChangeService
from tests.support.change_forms import CTO, REQUESTER, change_form, make_service, policy_with
from tests.support.memory_repository import MemoryChangeRepository
from tests.support.policy_fixture import TEST_POLICY

# Filed at 07:00 UTC (the clock fixture), a medium change is due by 15:00 (8 h), reminded at 11:00.
DEADLINE = timedelta(hours=8)


async def medium(service: ChangeService, clock: FakeClock, **overrides: object) -> Change:
    return await service.submit_change(form=change_form(clock, **overrides), requester=REQUESTER)


def chase_keys(notices: list[Any]) -> list[tuple[str, datetime, str]]:
    """(key, due, state) of the approval chase's notices."""
    return [(n.key, n.due_at, n.state) for n in notices if n.key.startswith("approval_")]


async def test_filing_plans_the_reminder_the_deadline_and_the_start_flag(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    filed = clock.now()
    change = await medium(service, clock)

    assert change.approval_due_at == filed + DEADLINE
    assert chase_keys(await repo.notices(change.id)) == [
        ("approval_reminder", filed + DEADLINE / 2, "pending"),
        ("approval_deadline", filed + DEADLINE, "pending"),
        ("approval_at_start", change.draft.starts_at, "pending"),
    ]


async def test_the_deadline_never_falls_after_the_window_opens(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=change_form(clock, impact="high", starts_in=timedelta(days=1)), requester=REQUESTER
    )  # high risk: 3 days, but the window opens in one
    assert change.approval_due_at == change.draft.starts_at


async def test_the_reminder_goes_to_those_who_have_not_answered_once(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await medium(service, clock)
    before = len(repo.outbox)
    clock.advance(DEADLINE / 2)

    assert await service.process_due_notices() == 1
    assert await service.process_due_notices() == 0

    sent = repo.intents_for(change.id)[before:]
    assert [(i.kind, i.dedupe_key is not None) for i in sent] == [(IntentKind.DM_APPROVERS, True)]
    assert sent[0].message == ApprovalChase(key="approval_reminder", due_at=change.approval_due_at)
    assert await service.approvers_to_notify(change_id=change.id) == ["ULEAD1", "ULEAD2"]
    stored = await service.get_change(change_id=change.id)
    assert stored.audit[-1].action is AuditAction.APPROVAL_REMINDED


async def test_the_deadline_chases_again_escalates_and_marks_the_card(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await medium(service, clock)
    clock.advance(DEADLINE)

    assert await service.process_due_notices() == 2  # the reminder (its moment passed: skipped), the deadline

    kinds = [(i.kind, getattr(i.message, "role", None)) for i in repo.intents_for(change.id)[-5:]]
    assert (IntentKind.DM_ROLE, "engineering_manager") in kinds
    assert (IntentKind.REFRESH_CARDS, None) in kinds
    card = await service.get_change(change_id=change.id, history=False)
    overdue = [e for e in card.audit if e.action is AuditAction.APPROVAL_OVERDUE]
    assert overdue and overdue[0].details["escalated_to"] == "engineering_manager"


async def test_approving_drops_the_chase(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await medium(service, clock)
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    assert {state for _, _, state in chase_keys(await repo.notices(change.id))} == {"cancelled"}
    clock.advance(timedelta(days=1))
    await service.process_due_notices()
    stored = await service.get_change(change_id=change.id)
    assert AuditAction.APPROVAL_REMINDED not in [e.action for e in stored.audit]


async def test_the_requester_is_told_once_when_the_window_opens_unapproved(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await medium(service, clock)
    clock.set(change.draft.starts_at)
    await service.process_due_notices()
    await service.process_due_notices()

    told = [
        i
        for i in repo.intents_for(change.id)
        if isinstance(i.message, ApprovalChase) and i.message.key == "approval_at_start"
    ]
    assert [(i.kind, i.channel) for i in told] == [(IntentKind.MESSAGE, REQUESTER)]


async def test_moving_a_waiting_change_plans_its_chase_for_the_new_window(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await medium(service, clock)
    clock.advance(timedelta(hours=5))  # past the reminder time: it is not planned again
    await service.process_due_notices()
    new_start = change.draft.starts_at - timedelta(days=1, hours=1)  # a day earlier, after the deadline

    outcome = await service.reschedule(
        change_id=change.id,
        user=REQUESTER,
        starts_at=int(new_start.timestamp()),
        ends_at=int((new_start + timedelta(hours=1)).timestamp()),
    )

    assert outcome.refusal is None
    pending = [(k, d) for k, d, s in chase_keys(await repo.notices(change.id)) if s == "pending"]
    assert pending == [
        ("approval_deadline", change.created_at + DEADLINE),
        ("approval_at_start", new_start),
    ]


async def test_no_deadline_when_the_policy_turns_it_off(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    assert policy_with().approvals.deadline.enabled  # on by default
    off = make_service(
        repo,
        clock,
        policy=policy_with_text(
            "approvals:\n  by_risk:\n",
            "approvals:\n  deadline: {enabled: false, flag_unapproved_start: false}\n  by_risk:\n",
        ),
    )
    change = await off.submit_change(form=change_form(clock), requester=REQUESTER)
    assert change.approval_due_at is None
    assert chase_keys(await repo.notices(change.id)) == []


def policy_with_text(old: str, new: str) -> Policy:
    """The suite's policy with one edit."""
    assert TEST_POLICY.count(old) == 1
    return parse_policy(TEST_POLICY.replace(old, new))


# --- delegation -------------------------------------------------------------------------
@pytest.fixture
def leads_and_cto(repo: MemoryChangeRepository, clock: FakeClock) -> ChangeService:
    """The CTO is a tech lead too, so a tech lead can hold the CTO's approvals."""
    policy = policy_with_text("  cto: [UCTO]\n", "  cto: [UCTO]\n  architects: [UCTO, ULEAD1]\n")
    return make_service(repo, clock, policy=policy)


async def test_a_delegate_signs_the_delegators_steps_while_it_lasts(
    leads_and_cto: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = leads_and_cto
    change = await service.submit_change(form=change_form(clock, impact="critical"), requester=REQUESTER)
    assert await service.check_decision(change_id=change.id, user="ULEAD1") is not None  # not a CTO

    outcome = await service.delegate(user=CTO, delegate="ULEAD1", until=date(2026, 11, 30))

    assert outcome.refusal is None
    assert await service.approvers_to_notify(change_id=change.id) == ["ULEAD1"]  # the CTO is away
    card = await service.get_change(change_id=change.id)
    assert await service.who_can_approve(change=card) == {0: (Approver("ULEAD1", CTO),)}
    news = [i for i in repo.intents if isinstance(i.message, DelegationNews)]
    assert [(i.channel, i.message.delegator) for i in news] == [("ULEAD1", CTO)]
    assert [r.entry.action for r in repo.audit_log if r.change_id is None] == [AuditAction.DELEGATED]

    decided = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert decided.accepted and decided.change.status is Status.APPROVED


async def test_a_delegation_ends_on_its_day_or_when_turned_off(
    leads_and_cto: ChangeService, clock: FakeClock
) -> None:
    service = leads_and_cto
    change = await service.submit_change(form=change_form(clock, impact="critical"), requester=REQUESTER)
    await service.delegate(user=CTO, delegate="ULEAD1", until=clock.now().date())
    assert await service.check_decision(change_id=change.id, user="ULEAD1") is None

    clock.set(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))  # midnight in London (UTC in November)
    assert await service.check_decision(change_id=change.id, user="ULEAD1") is not None

    await service.delegate(user=CTO, delegate="ULEAD1", until=date(2026, 12, 24))
    ended = await service.end_delegation(user=CTO)
    assert ended.refusal is None
    assert await service.check_decision(change_id=change.id, user="ULEAD1") is not None
    assert (await service.end_delegation(user=CTO)).refusal == "you have no delegation in force"


@pytest.mark.parametrize(
    ("user", "delegate", "until", "refusal"),
    [
        (CTO, CTO, date(2026, 12, 24), "you cannot delegate to yourself"),
        (CTO, "UREQ", date(2026, 12, 24), "they are not a member of your roles (Architects, CTO)"),
        (CTO, "ULEAD1", date(2026, 11, 22), "that day is past: give a day from today on"),
        (CTO, "ULEAD1", date(2028, 1, 1), "delegate for at most a year"),
        (
            "UREQ",
            "ULEAD1",
            date(2026, 12, 24),
            "you are in none of the policy's roles, so there is nothing to delegate",
        ),
    ],
)
async def test_a_delegation_is_refused_and_audited(
    leads_and_cto: ChangeService,
    repo: MemoryChangeRepository,
    user: str,
    delegate: str,
    until: date,
    refusal: str,
) -> None:
    outcome = await leads_and_cto.delegate(user=user, delegate=delegate, until=until)

    assert (outcome.delegation, outcome.refusal) == (None, refusal)
    assert [(r.entry.actor, r.entry.action, r.entry.details["refusal"]) for r in repo.audit_log] == [
        (user, AuditAction.ACTION_REFUSED, refusal)
    ]
    assert await repo.delegations(now=datetime(2026, 11, 23, 8, tzinfo=UTC)) == []


async def test_a_delegate_never_approves_for_the_requester(
    leads_and_cto: ChangeService, clock: FakeClock
) -> None:
    """The CTO files a critical change: their delegate cannot sign it in their name."""
    service = leads_and_cto
    change = await service.submit_change(form=change_form(clock, impact="critical"), requester=CTO)
    await service.delegate(user=CTO, delegate="ULEAD1", until=date(2026, 12, 24))

    outcome = await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    assert outcome.refusal is not None
    assert await service.approvers_to_notify(change_id=change.id) == []


# --- review steps added by rules ------------------------------------------------------------
RULES = """
  extra_steps:
    - when: {services: [database]}
      role: cto
    - when: {categories: [major]}
      role: tech_lead
      count: 2
"""


async def test_rules_add_review_steps_the_quorum_needs(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    policy = policy_with_text("  by_category:\n", RULES + "  by_category:\n")
    service = make_service(repo, clock, policy=policy)
    change = await service.submit_change(
        form=change_form(clock, services=["database", "api-server"]), requester=REQUESTER
    )
    assert [(s.role, s.count, s.purpose) for s in change.steps] == [("tech_lead", 1, ""), ("cto", 1, "rule")]

    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    assert (await service.get_change(change_id=change.id)).status is Status.PENDING_APPROVAL
    done = await service.decide(change_id=change.id, user=CTO, decision=Decision.APPROVE)
    assert done.change.status is Status.APPROVED

    major = await service.submit_change(
        form=change_form(
            clock, category="major", implementation_plan="Blue/green.", starts_in=timedelta(days=3)
        ),
        requester=REQUESTER,
    )
    assert [(s.role, s.purpose) for s in major.steps] == [
        ("engineering_manager", ""),
        ("cto", ""),
        ("tech_lead", "rule"),
    ]
    catalog = await service.submit_change(
        form=change_form(
            clock,
            category="standard",
            catalog="cache-clear",
            services=["database"],
            starts_in=timedelta(days=4),
        ),
        requester=REQUESTER,
    )
    assert catalog.steps == () and catalog.status is Status.APPROVED  # pre-approved: no rule applies
