"""The gate decision as plain values: go, wait or stop, and a reason a person can act on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar_policy import Freeze
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.gates import GateAnswer, GateDecision, decide_gate, is_pipeline_principal
from domain.model import ApprovalEntry, Change, ChangeDraft, PostState, StepSnapshot
from domain.policy import Policy
from domain.policy_loader import parse_policy
from tests.support.change_forms import policy_with
from tests.support.policy_fixture import TEST_POLICY

POLICY = policy_with()
START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
END = START + timedelta(hours=1)
EARLY = timedelta(minutes=30)
FAST = settings(max_examples=200, deadline=None)


def change(**overrides: Any) -> Change:
    draft_fields = {k: overrides.pop(k) for k in ("category", "services") if k in overrides}
    draft = ChangeDraft(
        title="Upgrade the API gateway",
        category=draft_fields.get("category", Category.NORMAL),
        impact=Impact.MEDIUM,
        likelihood=Likelihood.MEDIUM,
        services=draft_fields.get("services", ("api-server", "database")),
        starts_at=START,
        ends_at=END,
        description="Roll out gateway 2.4",
    )
    fields: dict[str, Any] = {
        "id": "CR-2026-0007",
        "draft": draft,
        "risk": Risk.MEDIUM,
        "status": Status.APPROVED,
        "requester": "UREQ",
        "version": 2,
        "created_at": START - timedelta(days=2),
        "updated_at": START - timedelta(days=1),
        "steps": (StepSnapshot("tech_lead", 1, ("ULEAD1",)),),
        "approved_at": START - timedelta(days=1),
    }
    return Change(**(fields | overrides))


def gate(
    subject: Change,
    now: datetime,
    *,
    service: str | None = None,
    freezes: tuple[Freeze, ...] = (),
    policy: Policy = POLICY,
) -> GateAnswer:
    return decide_gate(change=subject, service=service, now=now, policy=policy, freezes=freezes)


FREEZE = Freeze(1, "payments incident", "UMGR1", START - timedelta(hours=2))

CASES: list[tuple[str, Change, datetime, str | None, tuple[Freeze, ...], GateDecision, str]] = [
    ("approved, in the window", change(), START, None, (), GateDecision.GO, "CR-2026-0007 is approved"),
    (
        "in progress, in the window",
        change(status=Status.IN_PROGRESS),
        START + timedelta(minutes=5),
        "api-server",
        (),
        GateDecision.GO,
        "CR-2026-0007 is in progress; its window is open until 2026-03-02 15:00 UTC",
    ),
    (
        "awaiting approval",
        change(status=Status.PENDING_APPROVAL, approved_at=None),
        START,
        None,
        (),
        GateDecision.WAIT,
        "CR-2026-0007 is waiting for approval: Tech lead 0/1",
    ),
    (
        "approved, too early",
        change(),
        START - timedelta(hours=2),
        None,
        (),
        GateDecision.WAIT,
        "the window opens at 2026-03-02 14:00 UTC; the gate opens 30 minutes before",
    ),
    (
        "rejected",
        change(
            status=Status.REJECTED,
            approvals=(ApprovalEntry("ULEAD1", Decision.REJECT, 0, START, "no rollback tested"),),
        ),
        START,
        None,
        (),
        GateDecision.STOP,
        "CR-2026-0007 was rejected by ULEAD1: no rollback tested",
    ),
    ("cancelled", change(status=Status.CANCELLED), START, None, (), GateDecision.STOP, "was cancelled"),
    ("completed", change(status=Status.COMPLETED), START, None, (), GateDecision.STOP, "is completed"),
    ("failed", change(status=Status.FAILED), START, None, (), GateDecision.STOP, "CR-2026-0007 failed"),
    ("rolled back", change(status=Status.ROLLED_BACK), START, None, (), GateDecision.STOP, "rolled back"),
    ("closed", change(status=Status.CLOSED), START, None, (), GateDecision.STOP, "is closed"),
    (
        "window closed",
        change(),
        END + timedelta(minutes=1),
        None,
        (),
        GateDecision.STOP,
        "CR-2026-0007's window closed at 2026-03-02 15:00 UTC; reschedule it to deploy",
    ),
    (
        "service not in scope",
        change(),
        START,
        "db",
        (),
        GateDecision.STOP,
        "service 'db' is not in CR-2026-0007 (api-server, database)",
    ),
    (
        "service not in scope, still pending",
        change(status=Status.PENDING_APPROVAL),
        START,
        "kubernetes",
        (),
        GateDecision.STOP,
        "service 'kubernetes' is not in CR-2026-0007",
    ),
    (
        "freeze in force",
        change(),
        START,
        None,
        (FREEZE,),
        GateDecision.STOP,
        "freeze in force: payments incident (since 2026-03-02 12:00 UTC)",
    ),
    (
        "freeze ended",
        change(),
        START,
        None,
        (replace(FREEZE, ended_at=START - timedelta(minutes=1)),),
        GateDecision.GO,
        "is approved",
    ),
    (
        "freeze its exception's approvers saw",
        change(
            steps=(
                StepSnapshot("tech_lead", 1, ("ULEAD1",)),
                StepSnapshot("engineering_manager", 1, ("UMGR1",), purpose="exception"),
            ),
            approved_at=START - timedelta(hours=1),  # after the freeze began: they saw it
        ),
        START,
        None,
        (FREEZE,),
        GateDecision.GO,
        "is approved",
    ),
    (
        "emergency before its post-approval",
        change(category=Category.EMERGENCY, post_state=PostState.PENDING, steps=()),
        START,
        None,
        (FREEZE,),
        GateDecision.GO,
        "is approved",
    ),
    (
        "emergency awaiting the on-call's go-ahead",
        change(
            category=Category.EMERGENCY,
            status=Status.PENDING_APPROVAL,
            post_state=PostState.PENDING,
            steps=(StepSnapshot("on_call", 1, ()),),
        ),
        START,
        None,
        (),
        GateDecision.WAIT,
        "waiting for approval: On call 0/1",
    ),
    (
        "emergency whose post-approval was rejected",
        change(category=Category.EMERGENCY, post_state=PostState.REJECTED, steps=()),
        START,
        None,
        (),
        GateDecision.STOP,
        "post-approval was rejected",
    ),
]


@pytest.mark.parametrize(
    ("subject", "now", "service", "freezes", "decision", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_gate_answers(
    subject: Change,
    now: datetime,
    service: str | None,
    freezes: tuple[Freeze, ...],
    decision: GateDecision,
    reason: str,
) -> None:
    answer = gate(subject, now, service=service, freezes=freezes)
    assert answer.decision is decision
    assert reason in answer.reason


def test_the_gate_opens_exactly_early_before_the_window_and_shuts_exactly_at_its_end() -> None:
    subject = change()
    assert gate(subject, START - EARLY - timedelta(microseconds=1)).decision is GateDecision.WAIT
    assert gate(subject, START - EARLY).decision is GateDecision.GO
    assert gate(subject, END - timedelta(microseconds=1)).decision is GateDecision.GO
    assert gate(subject, END).decision is GateDecision.STOP


def test_the_policy_sets_how_early_the_gate_opens() -> None:
    at_start = policy_with("gates: {early: 0m}\n")
    subject = change()
    answer = gate(subject, START - timedelta(seconds=1), policy=at_start)
    assert answer == GateAnswer(
        GateDecision.WAIT, "the window opens at 2026-03-02 14:00 UTC; the gate opens then"
    )
    assert gate(subject, START, policy=at_start).decision is GateDecision.GO
    hour = policy_with("gates: {early: 1h}\n")
    assert "the gate opens 1 hour before" in gate(subject, START - timedelta(hours=2), policy=hour).reason
    assert gate(subject, START - timedelta(hours=1), policy=hour).decision is GateDecision.GO


def test_a_blackout_stops_the_gate_unless_an_exception_was_approved() -> None:
    policy = policy_with(
        "blackouts:\n  - name: Monday afternoon\n    weekly: {days: [mon], start: '12:00', end: '18:00'}\n"
    )
    answer = gate(change(), START, policy=policy)
    assert answer == GateAnswer(GateDecision.STOP, "blackout in force: Monday afternoon")
    excepted = change(steps=(StepSnapshot("engineering_manager", 1, ("UMGR1",), purpose="exception"),))
    assert gate(excepted, START, policy=policy).decision is GateDecision.GO
    emergency = change(category=Category.EMERGENCY, steps=())
    assert gate(emergency, START, policy=policy).decision is GateDecision.GO


def test_a_freeze_declared_after_the_exception_was_approved_still_stops_it() -> None:
    excepted = change(
        steps=(StepSnapshot("engineering_manager", 1, ("UMGR1",), purpose="exception"),),
        approved_at=START - timedelta(days=1),
    )
    later = Freeze(2, "", "UMGR1", START - timedelta(minutes=5))
    answer = gate(excepted, START, freezes=(later,))
    assert answer == GateAnswer(
        GateDecision.STOP, "freeze in force: no reason given (since 2026-03-02 13:55 UTC)"
    )


@FAST
@given(offset=st.integers(min_value=-3 * 3600, max_value=3 * 3600))
def test_an_approved_change_goes_exactly_within_its_gate(offset: int) -> None:
    now = START + timedelta(seconds=offset)
    answer = gate(change(), now)
    if now < START - EARLY:
        assert answer.decision is GateDecision.WAIT
    elif now < END:
        assert answer.decision is GateDecision.GO
    else:
        assert answer.decision is GateDecision.STOP


@FAST
@given(
    status=st.sampled_from(list(Status)),
    offset=st.integers(min_value=-3 * 3600, max_value=3 * 3600),
    service=st.sampled_from([None, "api-server", "database", "kubernetes"]),
)
def test_only_an_approved_or_started_change_ever_goes(
    status: Status, offset: int, service: str | None
) -> None:
    answer = gate(change(status=status), START + timedelta(seconds=offset), service=service)
    if answer.decision is GateDecision.GO:
        assert status in (Status.APPROVED, Status.IN_PROGRESS)
        assert service in (None, "api-server", "database")
    if status is Status.PENDING_APPROVAL:
        assert answer.decision is not GateDecision.GO
    assert answer.reason


def test_pipeline_principals_are_named_api_or_github() -> None:
    assert is_pipeline_principal("api:deploy-bot")
    assert is_pipeline_principal("github:org/repo@production")
    assert not is_pipeline_principal("UIMPL")
    assert not is_pipeline_principal("api:")
    assert not is_pipeline_principal("gitlab:x")


def test_a_change_sent_back_for_changes_waits_at_its_gate() -> None:
    answer = gate(change(status=Status.CHANGES_REQUESTED), START)

    assert answer == GateAnswer(
        GateDecision.WAIT,
        "CR-2026-0007 is back with its requester: an approver asked for changes before approving",
    )


# The policy of the role-label tests, with labels for two roles.
LABELLED_POLICY = TEST_POLICY.replace(
    "\nservices: [api-server",
    '\nrole_labels:\n  tech_lead: "Platform TL"\n  cto: Chief\n' + "\nservices: [api-server",
    1,
)


def test_a_pipeline_waiting_at_the_gate_reads_the_labels() -> None:
    """The gate's reason once said "Cto 0/1"; it names roles as the cards do."""
    pending = replace(
        change(status=Status.PENDING_APPROVAL, approved_at=None),
        steps=(StepSnapshot("tech_lead", 1, ("ULEAD1",)), StepSnapshot("cto", 1, ("UCTO",))),
    )
    for policy, reason in (
        (policy_with(), "Tech lead 0/1, CTO 0/1"),
        (parse_policy(LABELLED_POLICY), "Platform TL 0/1, Chief 0/1"),
    ):
        answer = decide_gate(change=pending, service=None, now=START, policy=policy, freezes=())
        assert answer.reason.endswith(f"waiting for approval: {reason}")
