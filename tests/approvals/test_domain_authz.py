"""The rules that bind an approval to its people and window, as plain values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import quorum
from domain.authz import deciders_excluded, incident_refusal, voids_approval
from domain.calendar_policy import Blackout, Freeze
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.model import ApprovalEntry, Change, ChangeDraft, Phase, StepSnapshot
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from domain.start_rules import StartBlockKind, opens_at, start_block
from tests.support.policy_fixture import TEST_POLICY

FAST = settings(max_examples=200, deadline=None)
LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 6, 9, 10, 0, tzinfo=UTC)
POLICY = parse_policy(TEST_POLICY + "incident_roles: [engineering_manager]\n")
LEAD = StepSnapshot(role="tech_lead", count=1, members=("ULEAD1", "ULEAD2"))


def change(
    *,
    start: datetime = T0,
    hours: float = 1,
    status: Status = Status.APPROVED,
    category: Category = Category.NORMAL,
    steps: tuple[StepSnapshot, ...] = (LEAD,),
    approvals: tuple[ApprovalEntry, ...] = (
        ApprovalEntry("ULEAD2", Decision.APPROVE, 0, T0 - timedelta(days=1)),
    ),
    implementer: str | None = "UIMPL",
    started_at: datetime | None = None,
) -> Change:
    draft = ChangeDraft(
        title="A change",
        category=category,
        impact=Impact.MEDIUM,
        likelihood=Likelihood.MEDIUM,
        services=("api-server",),
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        description="Under test.",
        implementer=implementer,
    )
    return Change(
        id="CR-2026-0001",
        draft=draft,
        risk=Risk.MEDIUM,
        status=status,
        requester="UREQ",
        version=3,
        created_at=start - timedelta(days=2),
        updated_at=start - timedelta(days=1),
        steps=steps,
        approvals=approvals,
        approved_at=start - timedelta(days=1) if status is Status.APPROVED else None,
        started_at=started_at,
    )


# --- separation of duties ---------------------------------------------------------
def test_the_implementer_is_refused_unless_the_policy_allows_it() -> None:
    args = {
        "status": Status.PENDING_APPROVAL,
        "requester": "UREQ",
        "steps": [LEAD],
        "approvals": [],
        "user": "ULEAD1",
        "eligible_steps": {0},
        "decision": Decision.APPROVE,
    }
    assert quorum.decide(**args, implementer="ULEAD1") is quorum.Refusal.OWN_IMPLEMENTATION  # type: ignore[arg-type]
    assert isinstance(quorum.decide(**args, implementer=None), quorum.Accepted)  # type: ignore[arg-type]
    assert isinstance(quorum.decide(**args, implementer="UOTHER"), quorum.Accepted)  # type: ignore[arg-type]


def test_who_is_never_offered_the_approve_button() -> None:
    cr = change(implementer="ULEAD1")
    assert deciders_excluded(cr, POLICY) == {"UREQ", "ULEAD1"}
    lenient = POLICY.model_copy(
        update={"approvals": POLICY.approvals.model_copy(update={"implementer_may_approve": True})}
    )
    assert deciders_excluded(cr, lenient) == {"UREQ"}
    assert deciders_excluded(change(implementer=None), POLICY) == {"UREQ"}  # the requester implements


# --- incident links -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "started", "allowed"),
    [
        (Status.PENDING_APPROVAL, False, False),
        (Status.APPROVED, False, False),
        (Status.REJECTED, False, False),
        (Status.CANCELLED, False, False),
        (Status.IN_PROGRESS, True, True),
        (Status.COMPLETED, True, True),
        (Status.FAILED, True, True),
        (Status.ROLLED_BACK, True, True),
        (Status.CLOSED, True, True),
        (Status.CLOSED, False, False),
    ],
)
def test_only_a_change_that_started_can_have_caused_an_incident(
    status: Status, started: bool, allowed: bool
) -> None:
    cr = change(status=status, started_at=T0 if started else None)
    refusal = incident_refusal(change=cr, user="UREQ", in_incident_role=False, policy=POLICY)
    assert (refusal is None) == allowed
    if not allowed:
        assert "never started" in str(refusal)


@pytest.mark.parametrize(
    ("user", "in_role", "allowed"),
    [("UREQ", False, True), ("UIMPL", False, True), ("UMGR1", True, True), ("UOPS", False, False)],
)
def test_who_may_link_an_incident(user: str, in_role: bool, allowed: bool) -> None:
    cr = change(status=Status.COMPLETED, started_at=T0)
    refusal = incident_refusal(change=cr, user=user, in_incident_role=in_role, policy=POLICY)
    assert (refusal is None) == allowed
    if not allowed:
        assert (
            refusal
            == "only the requester, the implementer, engineering_manager can link CR-2026-0001 to an incident"
        )


# --- reschedules ----------------------------------------------------------------------
def test_what_a_move_voids() -> None:
    later = T0 + timedelta(days=1)
    end = later + timedelta(hours=1)
    assert voids_approval(change(), later, end, timedelta(0))
    assert not voids_approval(change(category=Category.EMERGENCY), later, end, timedelta(0))
    assert not voids_approval(change(steps=(), approvals=()), later, end, timedelta(0))  # pre-approved
    assert not voids_approval(change(status=Status.PENDING_APPROVAL, approvals=()), later, end, timedelta(0))
    post = (ApprovalEntry("UMGR1", Decision.APPROVE, 0, T0, phase=Phase.POST),)
    assert not voids_approval(change(approvals=post), later, end, timedelta(0))
    # a partly approved pending change loses what it had too
    assert voids_approval(change(status=Status.PENDING_APPROVAL), later, end, timedelta(0))


@FAST
@given(
    start_shift=st.integers(min_value=-180, max_value=180),
    end_shift=st.integers(min_value=-180, max_value=180),
    keep=st.integers(min_value=0, max_value=120),
)
def test_a_move_keeps_the_approval_exactly_when_both_ends_stay_within_the_allowance(
    start_shift: int, end_shift: int, keep: int
) -> None:
    cr = change(hours=4)
    new_start = cr.draft.starts_at + timedelta(minutes=start_shift)
    new_end = cr.draft.ends_at + timedelta(minutes=end_shift)
    voided = voids_approval(cr, new_start, new_end, timedelta(minutes=keep))
    assert voided == (max(abs(start_shift), abs(end_shift)) > keep)


# --- the start gate ---------------------------------------------------------------------
def gate(cr: Change, now: datetime, **kw: object) -> StartBlockKind | None:
    args: dict[str, object] = {
        "tolerance": timedelta(minutes=30),
        "blackouts": (),
        "freezes": (),
        "zone": LONDON,
    }
    args.update(kw)
    block = start_block(change=cr, now=now, **args)  # type: ignore[arg-type]
    return None if block is None else block.kind


# Windows that open on the mornings the clocks change in London, and a day before and after.
DST_STARTS = [
    datetime(2026, 3, 29, 0, 45, tzinfo=UTC),  # 00:45 GMT; at 01:00 GMT clocks go to 02:00 BST
    datetime(2026, 3, 29, 1, 15, tzinfo=UTC),  # 02:15 BST
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 01:30 BST, the first of the two 01:30s
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 01:30 GMT, the second
    datetime(2026, 3, 28, 9, 0, tzinfo=UTC),
    datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
]


@FAST
@given(
    start=st.sampled_from(DST_STARTS),
    offset=st.integers(min_value=-24 * 60, max_value=24 * 60),
    tolerance=st.integers(min_value=0, max_value=180),
    hours=st.integers(min_value=1, max_value=6),
)
def test_a_start_is_allowed_from_tolerance_before_the_window_until_it_closes_across_dst(
    start: datetime, offset: int, tolerance: int, hours: int
) -> None:
    """Absolute time decides, not the wall clock: a 30-minute tolerance is 30 real minutes
    even when the clocks jump inside it."""
    cr = change(start=start, hours=hours)
    now = start + timedelta(minutes=offset)
    kind = gate(cr, now, tolerance=timedelta(minutes=tolerance))
    if offset < -tolerance:
        assert kind is StartBlockKind.EARLY
    elif now >= cr.draft.ends_at:
        assert kind is StartBlockKind.CLOSED
    else:
        assert kind is None
    assert opens_at(start, timedelta(minutes=tolerance)) == start - timedelta(minutes=tolerance)


def test_the_refusal_names_the_window_in_the_policy_zone() -> None:
    cr = change(start=datetime(2026, 3, 29, 1, 15, tzinfo=UTC))
    block = start_block(
        change=cr,
        now=cr.draft.starts_at - timedelta(hours=2),
        tolerance=timedelta(minutes=30),
        blackouts=(),
        freezes=(),
        zone=LONDON,
    )
    assert block is not None
    assert (
        block.reason
        == "its approved window opens Sun 29 Mar 02:15 BST; it may start from Sun 29 Mar 00:45 GMT"
    )


def test_freezes_and_blackouts_stop_a_start_emergencies_and_exceptions_are_sensible() -> None:
    cr = change()
    freeze = Freeze(id=1, reason="audit", started_by="UMGR1", started_at=T0 - timedelta(hours=1))
    assert gate(cr, T0, freezes=[freeze]) is StartBlockKind.FREEZE
    ended = replace(freeze, ended_at=T0 - timedelta(minutes=1))
    assert gate(cr, T0, freezes=[ended]) is None
    tuesday = Blackout.model_validate({"name": "Tuesdays", "weekly": {"days": ["tue"]}})  # T0 is a Tuesday
    assert gate(cr, T0, blackouts=[tuesday]) is StartBlockKind.BLACKOUT
    # emergencies are exempt from windows, freezes and blackouts
    emergency = change(category=Category.EMERGENCY)
    assert gate(emergency, T0 - timedelta(days=3), freezes=[freeze], blackouts=[tuesday]) is None
    # an exception approved the blackout and the freezes already on; not a freeze declared later
    excepted = change(steps=(LEAD, replace(LEAD, role="engineering_manager", purpose="exception")))
    seen = replace(freeze, started_at=T0 - timedelta(days=2))  # on before it was approved
    assert gate(excepted, T0, blackouts=[tuesday], freezes=[seen]) is None
    later = replace(freeze, started_at=T0 - timedelta(minutes=5))
    assert gate(excepted, T0, freezes=[later]) is StartBlockKind.FREEZE


# --- the policy keys ---------------------------------------------------------------------
def test_the_new_policy_keys_default_and_fail_with_their_line() -> None:
    assert POLICY.start_tolerance == timedelta(minutes=30)
    assert POLICY.reschedule.keep_approval_within == timedelta(0)
    assert POLICY.approvals.implementer_may_approve is False
    assert POLICY.start_override_roles == []
    text = TEST_POLICY + "incident_roles: [ops]\nstart_override_roles: [cto, boss]\nstart_tolerance: soon\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    lines = text.splitlines()
    found = {(p.path, p.line) for p in info.value.problems}
    assert ("start_tolerance", lines.index("start_tolerance: soon") + 1) in found
    text = TEST_POLICY + "incident_roles: [ops]\nstart_override_roles: [cto, boss]\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    lines = text.splitlines()
    found = {(p.path, p.line) for p in info.value.problems}
    assert found == {
        ("incident_roles[0]", lines.index("incident_roles: [ops]") + 1),
        ("start_override_roles[1]", lines.index("start_override_roles: [cto, boss]") + 1),
    }
    assert "unknown role 'ops'" in str(info.value)
