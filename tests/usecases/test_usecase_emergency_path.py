"""One emergency path through ChangeService: the CR form with category emergency is
declared, the policy says who approves before and after the fix, the on-call acknowledges,
and an emergency finished without Start keeps its real duration."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Category, Decision, Impact, Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction, PostState, StepSnapshot
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import change_form, emergency_form, make_service
from tests.support.memory_repository import MemoryChangeRepository
from tests.support.policy_fixture import TEST_POLICY

HOSTILE = "<!here> *x* <https://evil.example|y> & `z`"


async def test_the_form_with_category_emergency_is_declared(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    form = change_form(
        clock,
        category="emergency",
        impact="critical",
        title=f"Fix {HOSTILE}",
        description=f"Broken: {HOSTILE}",
        implementation_plan="Roll back to 4.1",
        justification=HOSTILE,
        test_plan="Smoke tests after",
        implementer="UIMPL",
    )
    change = await service.submit_change(form=form, requester="UREQ")

    draft = change.draft
    assert (draft.category, change.status, draft.severity, draft.impact) == (
        Category.EMERGENCY,
        Status.APPROVED,
        "P0",
        Impact.CRITICAL,
    )
    assert (draft.starts_at, draft.ends_at) == (clock.now(), clock.now() + timedelta(hours=2))
    assert (draft.description, draft.implementation_plan) == (f"Broken: {HOSTILE}", "Roll back to 4.1")
    assert (draft.justification, draft.test_plan, draft.implementer) == (
        HOSTILE,
        "Smoke tests after",
        "UIMPL",
    )
    assert draft.title == f"Fix {HOSTILE}"
    assert (change.post_state, change.post_due_at) == (PostState.PENDING, clock.now() + timedelta(hours=24))
    stored = await service.get_change(change_id=change.id, history=True)
    assert AuditAction.EMERGENCY_DECLARED in [e.action for e in stored.audit]
    assert [(i.kind, i.channel) for i in repo.intents_for(change.id)] == [
        (IntentKind.POST_CARD, "CCHANGES"),
        (IntentKind.POST_CARD, "CINCIDENTS"),
        (IntentKind.MESSAGE, "UREQ"),
        (IntentKind.DM_POST_APPROVERS, None),  # the managers' cards, at declaration
        (IntentKind.ON_CALL, None),
    ]


@pytest.mark.parametrize(
    ("impact", "severity"),
    [("critical", "P0"), ("high", "P1"), ("medium", "P2"), ("low", "P2"), (None, "P0")],
)
async def test_the_impact_picks_the_severity(
    service: ChangeService, clock: FakeClock, impact: str | None, severity: str
) -> None:
    form = change_form(clock, category="emergency", impact=impact, implementation_plan="Restart it")
    assert (await service.submit_change(form=form, requester="UREQ")).draft.severity == severity


async def test_a_form_emergency_is_refused_on_the_form_s_own_fields(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    form = change_form(clock, category="emergency", description=" ", implementer="not-a-user")
    with pytest.raises(IntakeRejected) as rejected:
        await service.submit_change(form=form, requester="UREQ")
    assert set(rejected.value.errors) == {"description", "implementation_plan", "implementer"}
    assert repo.outbox == []


async def test_by_category_emergency_names_the_post_approval_steps(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    text = TEST_POLICY.replace(
        "    standard: []\n",
        "    standard: []\n    emergency: [{role: cto, count: 1}, {role: tech_lead, count: 2}]\n",
    )
    service = make_service(repo, clock, policy=parse_policy(text))
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    assert service.policy.emergency.post_approval.role == "engineering_manager"  # by_category wins
    assert change.post_steps == (
        StepSnapshot("cto", 1, ("UCTO",)),
        StepSnapshot("tech_lead", 2, ("ULEAD1", "ULEAD2")),
    )
    assert await service.post_approvers_to_notify(change_id=change.id) == ["UCTO", "ULEAD1", "ULEAD2"]


async def test_an_empty_by_category_emergency_needs_no_post_approval(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    text = TEST_POLICY.replace("    standard: []\n", "    standard: []\n    emergency: []\n")
    service = make_service(repo, clock, policy=parse_policy(text))
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    assert (change.status, change.post_state, change.post_due_at) == (
        Status.APPROVED,
        PostState.NOT_NEEDED,
        None,
    )
    assert not [n for n in await repo.notices(change.id) if n.key.startswith("post_")]
    assert IntentKind.DM_POST_APPROVERS not in [i.kind for i in repo.intents_for(change.id)]


async def test_on_call_and_manager_pre_approval(repo: MemoryChangeRepository, clock: FakeClock) -> None:
    policy = parse_policy(
        TEST_POLICY.replace("emergency:\n", "emergency:\n  pre_approval: [on_call, engineering_manager]\n")
    )
    service = make_service(repo, clock, policy=policy)
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    assert change.status is Status.PENDING_APPROVAL
    assert change.steps == (
        StepSnapshot("on_call", 1, ()),
        StepSnapshot("engineering_manager", 1, ("SMANAGERS",)),
    )
    assert IntentKind.DM_APPROVERS in [i.kind for i in repo.intents_for(change.id)]
    assert await service.approvers_to_notify(change_id=change.id) == ["UMGR1", "UMGR2"]
    await service.assign_on_call(change_id=change.id, users=["UONCALL"], source="pagerduty", reason=None)

    manager = await service.decide(change_id=change.id, user="UMGR1", decision=Decision.APPROVE)
    assert manager.accepted and manager.change.status is Status.PENDING_APPROVAL
    go = await service.decide(change_id=change.id, user="UONCALL", decision=Decision.APPROVE)
    assert go.accepted and go.change.status is Status.APPROVED
    assert go.change.post_state is PostState.PENDING  # the post-approval still follows


def test_pre_approval_names_known_roles_with_its_line() -> None:
    text = TEST_POLICY.replace("emergency:\n", "emergency:\n  pre_approval: [on_call, boss]\n")
    with pytest.raises(PolicyError) as error:
        parse_policy(text)
    [problem] = error.value.problems
    assert problem.path == "emergency.pre_approval[1]" and "unknown role 'boss'" in problem.message
    assert problem.line == text.splitlines().index("  pre_approval: [on_call, boss]") + 1


async def test_completed_without_start_began_at_the_declaration(
    service: ChangeService, clock: FakeClock
) -> None:
    declared = clock.now()
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    clock.advance(timedelta(minutes=50))
    done = await service.record_progress(change_id=change.id, user="UDEV", action=ProgressAction.COMPLETE)
    assert done.refusal is None
    assert (done.change.started_at, done.change.finished_at) == (declared, declared + timedelta(minutes=50))
    stored = await service.get_change(change_id=change.id, history=True)
    started = next(e for e in stored.audit if e.action is AuditAction.STARTED)
    assert started.details["implicit"] is True and started.details["started_at"] == declared.isoformat()


async def test_a_normal_change_completed_without_start_still_starts_then(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=change_form(clock, impact="low", likelihood="low", starts_in=timedelta(minutes=1)),
        requester="UREQ",
    )
    clock.advance(timedelta(minutes=20))
    done = await service.record_progress(change_id=change.id, user="UREQ", action=ProgressAction.COMPLETE)
    assert done.change.started_at == clock.now()


async def test_only_the_on_call_acknowledges_and_once(service: ChangeService, clock: FakeClock) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.assign_on_call(change_id=change.id, users=["UONCALL"], source="pagerduty", reason=None)

    bystander = await service.acknowledge(change_id=change.id, user="UMGR1")
    first = await service.acknowledge(change_id=change.id, user="UONCALL")
    again = await service.acknowledge(change_id=change.id, user="UONCALL")

    assert bystander.refusal == "only the on-call engineer acknowledges an emergency"
    assert first.refusal is None
    assert again.refusal == "you acknowledged it already"
    trail = (await service.get_change(change_id=change.id, history=True)).audit
    assert [e.actor for e in trail if e.action is AuditAction.ON_CALL_ACKNOWLEDGED] == ["UONCALL"]
    assert [e.actor for e in trail if e.action is AuditAction.ACTION_REFUSED] == ["UMGR1"]


async def test_with_a_go_ahead_the_on_call_does_not_acknowledge(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = make_service(
        repo,
        clock,
        policy=parse_policy(TEST_POLICY.replace("emergency:\n", "emergency:\n  go_ahead: on_call\n")),
    )
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.assign_on_call(change_id=change.id, users=["UONCALL"], source="pagerduty", reason=None)
    refused = await service.acknowledge(change_id=change.id, user="UONCALL")
    assert refused.refusal is not None and "go-ahead" in refused.refusal
