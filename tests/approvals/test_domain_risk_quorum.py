"""Risk scoring, the quorum rules and the CR state machine: pure functions, tested on plain values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Decision, Impact, Likelihood, Risk, Status
from domain.lifecycle import OPEN_STATUSES, TRANSITIONS, InvalidTransition, can_transition, transition
from domain.model import ApprovalEntry, StepSnapshot
from domain.quorum import (
    Accepted,
    Refusal,
    approvals_per_step,
    decide,
    is_fully_approved,
    open_steps,
)
from domain.risk import DEFAULT_RISK_MATRIX, RISK_ORDER, assess_risk, risk_rank

FAST = settings(max_examples=200, deadline=None)
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- risk

# Seed process 002, "2. Risk Assessment", copied cell by cell (rows likelihood, columns impact):
#
# | Impact ➡️         | Low    | Medium | High     | Critical |
# | **High**          | Medium | High   | Critical | Critical |
# | **Medium**        | Low    | Medium | High     | Critical |
# | **Low**           | Low    | Low    | Medium   | High     |
SEED_002_TABLE = {
    ("high", "low"): "medium",
    ("high", "medium"): "high",
    ("high", "high"): "critical",
    ("high", "critical"): "critical",
    ("medium", "low"): "low",
    ("medium", "medium"): "medium",
    ("medium", "high"): "high",
    ("medium", "critical"): "critical",
    ("low", "low"): "low",
    ("low", "medium"): "low",
    ("low", "high"): "medium",
    ("low", "critical"): "high",
}

LIKELIHOOD_ORDER = (Likelihood.LOW, Likelihood.MEDIUM, Likelihood.HIGH)
IMPACT_ORDER = (Impact.LOW, Impact.MEDIUM, Impact.HIGH, Impact.CRITICAL)


def test_default_matrix_has_exactly_the_seed_cells() -> None:
    assert len(SEED_002_TABLE) == len(Likelihood) * len(Impact) == 12
    assert set(DEFAULT_RISK_MATRIX) == set(Likelihood)
    for row in DEFAULT_RISK_MATRIX.values():
        assert set(row) == set(Impact)


@pytest.mark.parametrize(("likelihood", "impact"), sorted(SEED_002_TABLE))
def test_default_matrix_cell_matches_seed_002(likelihood: str, impact: str) -> None:
    expected = Risk(SEED_002_TABLE[(likelihood, impact)])
    assert DEFAULT_RISK_MATRIX[Likelihood(likelihood)][Impact(impact)] is expected
    assert (
        assess_risk(DEFAULT_RISK_MATRIX, impact=Impact(impact), likelihood=Likelihood(likelihood)) is expected
    )


def test_risk_order_is_low_to_critical() -> None:
    assert [risk_rank(r) for r in (Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL)] == [0, 1, 2, 3]
    assert set(RISK_ORDER) == set(Risk)


@FAST
@given(
    likelihood=st.sampled_from(LIKELIHOOD_ORDER),
    a=st.sampled_from(IMPACT_ORDER),
    b=st.sampled_from(IMPACT_ORDER),
)
def test_risk_is_monotone_in_impact(likelihood: Likelihood, a: Impact, b: Impact) -> None:
    lo, hi = sorted((a, b), key=IMPACT_ORDER.index)
    assert risk_rank(assess_risk(DEFAULT_RISK_MATRIX, impact=lo, likelihood=likelihood)) <= risk_rank(
        assess_risk(DEFAULT_RISK_MATRIX, impact=hi, likelihood=likelihood)
    )


@FAST
@given(
    impact=st.sampled_from(IMPACT_ORDER),
    a=st.sampled_from(LIKELIHOOD_ORDER),
    b=st.sampled_from(LIKELIHOOD_ORDER),
)
def test_risk_is_monotone_in_likelihood(impact: Impact, a: Likelihood, b: Likelihood) -> None:
    lo, hi = sorted((a, b), key=LIKELIHOOD_ORDER.index)
    assert risk_rank(assess_risk(DEFAULT_RISK_MATRIX, impact=impact, likelihood=lo)) <= risk_rank(
        assess_risk(DEFAULT_RISK_MATRIX, impact=impact, likelihood=hi)
    )


complete_matrices = st.fixed_dictionaries(
    {
        likelihood: st.fixed_dictionaries({impact: st.sampled_from(list(Risk)) for impact in Impact})
        for likelihood in Likelihood
    }
)


@FAST
@given(matrix=complete_matrices)
def test_assess_risk_is_total_for_any_complete_matrix(matrix: dict[Likelihood, dict[Impact, Risk]]) -> None:
    for likelihood in Likelihood:
        for impact in Impact:
            risk = assess_risk(matrix, impact=impact, likelihood=likelihood)
            assert isinstance(risk, Risk)
            assert risk is matrix[likelihood][impact]


# --------------------------------------------------------------------------- quorum


def step(role: str = "lead", count: int = 1) -> StepSnapshot:
    return StepSnapshot(role=role, count=count, members=())


def approve(user: str, index: int) -> ApprovalEntry:
    return ApprovalEntry(user, Decision.APPROVE, index, AT)


def reject(user: str, index: int) -> ApprovalEntry:
    return ApprovalEntry(user, Decision.REJECT, index, AT, "no")


def call(
    *,
    steps: list[StepSnapshot],
    approvals: list[ApprovalEntry] | None = None,
    user: str = "UAPP",
    eligible: set[int] | None = None,
    decision: Decision = Decision.APPROVE,
    status: Status = Status.PENDING_APPROVAL,
    requester: str = "UREQ",
) -> Accepted | Refusal:
    return decide(
        status=status,
        requester=requester,
        steps=steps,
        approvals=approvals or [],
        user=user,
        eligible_steps={0} if eligible is None else eligible,
        decision=decision,
    )


@pytest.mark.parametrize("decision", list(Decision))
def test_requester_cannot_decide_own_request_even_if_eligible(decision: Decision) -> None:
    assert call(steps=[step()], user="UREQ", decision=decision) is Refusal.OWN_REQUEST


@pytest.mark.parametrize("earlier", [Decision.APPROVE, Decision.REJECT])
def test_a_user_decides_at_most_once(earlier: Decision) -> None:
    steps = [step(count=3), step("manager")]
    entry = ApprovalEntry("UAPP", earlier, 0, AT)
    for decision in Decision:
        assert (
            call(steps=steps, approvals=[entry], eligible={0, 1}, decision=decision)
            is Refusal.ALREADY_DECIDED
        )


def test_user_in_no_step_is_not_eligible() -> None:
    assert call(steps=[step()], eligible=set()) is Refusal.NOT_ELIGIBLE
    assert call(steps=[step()], eligible=set(), decision=Decision.REJECT) is Refusal.NOT_ELIGIBLE


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.PENDING_APPROVAL])
def test_only_pending_changes_take_decisions(status: Status) -> None:
    assert call(steps=[step()], status=status) is Refusal.NOT_PENDING
    # ... and that check comes first: not even the requester gets a different answer.
    assert call(steps=[step()], status=status, user="UREQ") is Refusal.NOT_PENDING


def test_steps_complete_when_all_of_the_users_steps_are_full() -> None:
    steps = [step("lead", 1), step("manager", 1)]
    approvals = [approve("ULEAD", 0)]
    assert call(steps=steps, approvals=approvals, eligible={0}) is Refusal.STEPS_COMPLETE
    assert (
        call(steps=steps, approvals=approvals, eligible={0}, decision=Decision.REJECT)
        is Refusal.STEPS_COMPLETE
    )
    # Eligible for an open step as well: that one is filled.
    assert call(steps=steps, approvals=approvals, eligible={0, 1}) == Accepted(1, Status.APPROVED)


def test_refusal_precedence() -> None:
    # requester check before "already decided" and eligibility
    assert call(steps=[step()], user="UREQ", eligible=set()) is Refusal.OWN_REQUEST
    # "already decided" before eligibility
    assert call(steps=[step()], approvals=[approve("UAPP", 0)], eligible=set()) is Refusal.ALREADY_DECIDED


def test_approval_fills_first_open_eligible_step() -> None:
    steps = [step("lead", 2), step("manager", 1)]
    assert call(steps=steps, eligible={0, 1}) == Accepted(0, Status.PENDING_APPROVAL)
    assert call(steps=steps, approvals=[approve("U1", 0)], user="U2", eligible={0, 1}) == Accepted(
        0, Status.PENDING_APPROVAL
    )
    two = [approve("U1", 0), approve("U2", 0)]
    assert call(steps=steps, approvals=two, user="U3", eligible={0, 1}) == Accepted(1, Status.APPROVED)


def test_last_needed_approval_approves_and_a_reject_rejects() -> None:
    steps = [step("lead", 1)]
    assert call(steps=steps) == Accepted(0, Status.APPROVED)
    assert call(steps=steps, decision=Decision.REJECT) == Accepted(0, Status.REJECTED)


def test_counting_helpers() -> None:
    steps = [step("a", 2), step("b", 1)]
    approvals = [approve("U1", 0), reject("U2", 1), approve("U3", 7), approve("U4", -1)]
    assert approvals_per_step(steps, approvals) == [1, 0]  # rejects and stray indexes don't count
    assert open_steps(steps, approvals) == [0, 1]
    assert not is_fully_approved(steps, approvals)
    done = [approve("U1", 0), approve("U2", 0), approve("U3", 1)]
    assert open_steps(steps, done) == []
    assert is_fully_approved(steps, done)


# --- property: folding random clicks ------------------------------------------


def oracle_refusal(
    *,
    status: Status,
    requester: str,
    steps: list[StepSnapshot],
    approvals: list[ApprovalEntry],
    user: str,
    eligible: frozenset[int],
) -> Refusal | None:
    if status is not Status.PENDING_APPROVAL:
        return Refusal.NOT_PENDING
    if user == requester:
        return Refusal.OWN_REQUEST
    if user in {a.user for a in approvals}:
        return Refusal.ALREADY_DECIDED
    if not eligible:
        return Refusal.NOT_ELIGIBLE
    filled = Counter(a.step_index for a in approvals if a.decision is Decision.APPROVE)
    if all(filled[i] >= steps[i].count for i in eligible):
        return Refusal.STEPS_COMPLETE
    return None


def oracle_status(steps: list[StepSnapshot], approvals: list[ApprovalEntry]) -> Status:
    if any(a.decision is Decision.REJECT for a in approvals):
        return Status.REJECTED
    filled = Counter(a.step_index for a in approvals)
    if all(filled[i] >= s.count for i, s in enumerate(steps)):
        return Status.APPROVED
    return Status.PENDING_APPROVAL


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[StepSnapshot], str, dict[str, frozenset[int]], list]:
    steps = draw(
        st.lists(st.integers(1, 3), min_size=1, max_size=4).map(
            lambda counts: [step(f"role{i}", c) for i, c in enumerate(counts)]
        )
    )
    pool = [f"U{i}" for i in range(draw(st.integers(1, 8)))]
    indexes = list(range(len(steps)))
    eligibility = {user: draw(st.frozensets(st.sampled_from(indexes), max_size=len(steps))) for user in pool}
    requester = draw(st.sampled_from([*pool, "UREQ"]))
    # mostly approvals, so runs often reach APPROVED before a reject ends them
    decisions = st.sampled_from([Decision.APPROVE] * 5 + [Decision.REJECT])
    clicks = draw(st.lists(st.tuples(st.sampled_from(pool), decisions), max_size=30))
    return steps, requester, eligibility, clicks


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_random_clicks_fold_to_the_oracle_status(
    scenario: tuple[list[StepSnapshot], str, dict[str, frozenset[int]], list[tuple[str, Decision]]],
) -> None:
    steps, requester, eligibility, clicks = scenario
    status = Status.PENDING_APPROVAL
    approvals: list[ApprovalEntry] = []
    for user, decision in clicks:
        expected = oracle_refusal(
            status=status,
            requester=requester,
            steps=steps,
            approvals=approvals,
            user=user,
            eligible=eligibility[user],
        )
        verdict = decide(
            status=status,
            requester=requester,
            steps=steps,
            approvals=tuple(approvals),
            user=user,
            eligible_steps=eligibility[user],
            decision=decision,
        )
        if expected is not None:
            assert verdict is expected
            continue
        assert isinstance(verdict, Accepted)
        assert user != requester
        assert verdict.step_index in eligibility[user]
        assert verdict.step_index in open_steps(steps, approvals)
        approvals.append(ApprovalEntry(user, decision, verdict.step_index, AT))
        status = verdict.new_status

        assert status is oracle_status(steps, approvals)
        counts = approvals_per_step(steps, approvals)
        assert all(counts[i] <= s.count for i, s in enumerate(steps))
        users = [a.user for a in approvals]
        assert len(users) == len(set(users))
        assert requester not in users

    # A CR is APPROVED exactly when every step has `count` distinct approvals and nobody rejected.
    assert (status is Status.APPROVED) == (
        is_fully_approved(steps, approvals) and all(a.decision is Decision.APPROVE for a in approvals)
    )
    assert (status is Status.REJECTED) == any(a.decision is Decision.REJECT for a in approvals)
    for i, s in enumerate(steps):
        signers = {a.user for a in approvals if a.step_index == i and a.decision is Decision.APPROVE}
        assert len(signers) <= s.count
        assert all(i in eligibility[u] for u in signers)


@FAST
@given(
    status=st.sampled_from(list(Status)),
    counts=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    eligible=st.frozensets(st.integers(0, 3)),
    decision=st.sampled_from(list(Decision)),
    prior=st.lists(st.tuples(st.sampled_from(["U1", "U2", "U3"]), st.integers(0, 3)), max_size=4),
)
def test_requester_never_accepted(
    status: Status,
    counts: list[int],
    eligible: frozenset[int],
    decision: Decision,
    prior: list[tuple[str, int]],
) -> None:
    steps = [step(f"r{i}", c) for i, c in enumerate(counts)]
    verdict = decide(
        status=status,
        requester="UREQ",
        steps=steps,
        approvals=[approve(u, i) for u, i in prior],
        user="UREQ",
        eligible_steps=eligible,
        decision=decision,
    )
    assert verdict in (Refusal.OWN_REQUEST, Refusal.NOT_PENDING)


# --------------------------------------------------------------------------- lifecycle

# The state machine written out independently of domain.lifecycle.
ALLOWED = {
    ("pending_approval", "approved"),
    ("pending_approval", "rejected"),
    ("pending_approval", "cancelled"),
    ("pending_approval", "changes_requested"),
    ("changes_requested", "pending_approval"),  # edited and resubmitted
    ("changes_requested", "approved"),  # edited so that it needs no sign-off
    ("changes_requested", "cancelled"),
    ("rejected", "pending_approval"),  # edited and resubmitted, keeping its id
    ("rejected", "approved"),
    ("approved", "pending_approval"),  # what was approved was edited or moved
    ("approved", "in_progress"),
    ("approved", "cancelled"),
    ("in_progress", "completed"),
    ("in_progress", "failed"),
    ("in_progress", "rolled_back"),
    ("completed", "closed"),
    ("failed", "closed"),
    ("failed", "rolled_back"),
    ("rolled_back", "closed"),
}
TERMINAL = {Status.CANCELLED, Status.CLOSED}  # a rejected change can be edited and resubmitted
ALL_PAIRS = [(a, b) for a in Status for b in Status]


def test_every_status_has_a_transition_row() -> None:
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_transition_table(current: Status, target: Status) -> None:
    allowed = (current.value, target.value) in ALLOWED
    assert can_transition(current, target) is allowed
    if allowed:
        assert transition(current, target) is target
    else:
        with pytest.raises(InvalidTransition) as info:
            transition(current, target)
        assert info.value.current is current
        assert info.value.target is target
        assert current.value in str(info.value)
        assert target.value in str(info.value)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_have_no_exits(terminal: Status) -> None:
    assert TRANSITIONS[terminal] == frozenset()
    for target in Status:
        with pytest.raises(InvalidTransition):
            transition(terminal, target)


def test_no_self_transitions() -> None:
    assert all(not can_transition(s, s) for s in Status)


def _reachable(start: Status, *, without: frozenset[Status] = frozenset()) -> set[Status]:
    seen = {start}
    frontier = [start]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen and nxt not in without:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


def test_every_status_reachable_and_every_path_can_end() -> None:
    assert _reachable(Status.PENDING_APPROVAL) == set(Status)
    for status in Status:
        assert _reachable(status) & TERMINAL, f"{status} can never finish"


def test_work_cannot_start_without_the_approval_gate() -> None:
    assert Status.IN_PROGRESS not in _reachable(Status.PENDING_APPROVAL, without=frozenset({Status.APPROVED}))


def test_open_statuses_are_the_pre_completion_ones() -> None:
    assert frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS}) == OPEN_STATUSES
    assert not OPEN_STATUSES & TERMINAL
