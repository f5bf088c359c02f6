"""domain.metrics on a hand-made November: every expected figure below was worked out by
hand from the table in `november()` and is written literally."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.metrics import (
    Metrics,
    Targets,
    Verdict,
    WeekPoint,
    compute_metrics,
    nearest_rank,
    outcome_of,
    post_approved_at,
    weekly_series,
)
from domain.model import (
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    Phase,
    PostState,
    StepSnapshot,
)
from domain.trends import Direction, trends
from modals.report import format_duration, report_blocks, report_text, trend_line

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def audit(*actions: tuple[AuditAction, datetime]) -> tuple[AuditEntry, ...]:
    return tuple(AuditEntry("UIMPL", action, moment) for action, moment in actions)


def make(
    change_id: str,
    *,
    category: Category,
    status: Status,
    starts: datetime,
    created: datetime | None = None,
    started: datetime | None = None,
    finished: datetime | None = None,
    trail: tuple[AuditEntry, ...] = (),
    post_state: PostState | None = None,
    post_due: datetime | None = None,
    post_approvals: tuple[ApprovalEntry, ...] = (),
    approved: datetime | None = None,
    needs_approval: bool = False,
) -> Change:
    created = created or starts - timedelta(days=1)
    steps = (StepSnapshot("tech_lead", 1, ("ULEAD",)),) if needs_approval else ()
    return Change(
        id=change_id,
        draft=ChangeDraft(
            title=f"change {change_id}",
            category=category,
            impact=Impact.MEDIUM,
            likelihood=Likelihood.MEDIUM,
            services=("api",),
            starts_at=starts,
            ends_at=starts + timedelta(hours=4),
            description="d",
        ),
        risk=Risk.MEDIUM,
        status=status,
        requester="UREQ",
        version=1,
        created_at=created,
        updated_at=created,
        steps=steps,
        approved_at=approved,
        audit=trail,
        started_at=started,
        finished_at=finished,
        post_state=post_state,
        post_due_at=post_due,
        post_approvals=post_approvals,
    )


def post_ok(moment: datetime, user: str = "UCTO") -> ApprovalEntry:
    return ApprovalEntry(user, Decision.APPROVE, 0, moment, phase=Phase.POST)


N, S, M, E = Category.NORMAL, Category.STANDARD, Category.MAJOR, Category.EMERGENCY


def november() -> list[Change]:
    """14 changes starting in November 2026 (lead time / time to implement in minutes)
    and two just outside it.

    | id    | cat | status      | outcome  | lead  | impl |
    | CR-1  | N   | completed   | success  | 4320  | 120  |  starts exactly at the period start
    | CR-2  | S   | completed   | success  | 60    | 30   |
    | CR-3  | N   | closed      | success  | 1440  | 60   |  audit: completed, closed
    | CR-4  | M   | rolled_back | rollback | 10080 | 240  |  audit: failed, rolled back
    | CR-5  | N   | closed      | failed   | 2880  | 120  |  audit: failed, closed
    | CR-6  | E   | completed   | success  | 10    | 60   |  post-approved 5 h after filing (due 24 h)
    | CR-7  | E   | completed   | success  | 20    | 30   |  post-approval overdue
    | CR-8  | E   | in_progress | -        | 4     | -    |  post-approval not yet due on 1 Dec
    | CR-9  | N   | approved    | -        | -     | -    |
    | CR-10 | S   | cancelled   | -        | -     | -    |
    | CR-11 | N   | pending     | -        | -     | -    |
    | CR-12 | S   | completed   | success  | 30    | 15   |  caused an incident
    | CR-13 | E   | closed      | success  | 0     | 60   |  post-approval quorum complete 2 h late
    | CR-14 | N   | closed      | unknown  | 1440  | 60   |  no audit loaded
    """
    return [
        make("CR-0", category=N, status=Status.COMPLETED, starts=at(31, 23, 59, month=10)),
        make(
            "CR-1",
            category=N,
            status=Status.COMPLETED,
            starts=at(1),
            created=at(29, month=10),
            started=at(1),
            finished=at(1, 2),
        ),
        make(
            "CR-2",
            category=S,
            status=Status.COMPLETED,
            starts=at(3, 10),
            created=at(3, 9),
            started=at(3, 10),
            finished=at(3, 10, 30),
        ),
        make(
            "CR-3",
            category=N,
            status=Status.CLOSED,
            starts=at(5, 10),
            created=at(4, 10),
            started=at(5, 10),
            finished=at(5, 11),
            trail=audit((AuditAction.COMPLETED, at(5, 11)), (AuditAction.CLOSED, at(6, 11))),
        ),
        make(
            "CR-4",
            category=M,
            status=Status.ROLLED_BACK,
            starts=at(10, 2),
            created=at(3, 2),
            started=at(10, 2),
            finished=at(10, 6),
            trail=audit((AuditAction.FAILED, at(10, 5)), (AuditAction.ROLLED_BACK, at(10, 6))),
        ),
        make(
            "CR-5",
            category=N,
            status=Status.CLOSED,
            starts=at(12, 10),
            created=at(10, 10),
            started=at(12, 10),
            finished=at(12, 12),
            trail=audit((AuditAction.FAILED, at(12, 12)), (AuditAction.CLOSED, at(13))),
        ),
        make(
            "CR-6",
            category=E,
            status=Status.COMPLETED,
            starts=at(15, 3),
            created=at(15, 3),
            started=at(15, 3, 10),
            finished=at(15, 4, 10),
            post_state=PostState.APPROVED,
            post_due=at(16, 3),
            post_approvals=(post_ok(at(15, 8)),),
        ),
        make(
            "CR-7",
            category=E,
            status=Status.COMPLETED,
            starts=at(20, 1),
            created=at(20, 1),
            started=at(20, 1, 20),
            finished=at(20, 1, 50),
            post_state=PostState.OVERDUE,
            post_due=at(21, 1),
        ),
        make(
            "CR-8",
            category=E,
            status=Status.IN_PROGRESS,
            starts=at(30, 20),
            created=at(30, 19, 56),
            started=at(30, 20),
            post_state=PostState.PENDING,
            post_due=at(1, 12, month=12),
        ),
        make("CR-9", category=N, status=Status.APPROVED, starts=at(25, 10), created=at(20, 10)),
        make("CR-10", category=S, status=Status.CANCELLED, starts=at(26, 10)),
        make("CR-11", category=N, status=Status.PENDING_APPROVAL, starts=at(28, 10)),
        make(
            "CR-12",
            category=S,
            status=Status.COMPLETED,
            starts=at(18, 10),
            created=at(18, 9, 30),
            started=at(18, 10),
            finished=at(18, 10, 15),
        ),
        make(
            "CR-13",
            category=E,
            status=Status.CLOSED,
            starts=at(22, 5),
            created=at(22, 5),
            started=at(22, 5),
            finished=at(22, 6),
            trail=audit((AuditAction.COMPLETED, at(22, 6)), (AuditAction.CLOSED, at(23, 8))),
            post_state=PostState.APPROVED,
            post_due=at(23, 5),
            post_approvals=(post_ok(at(23, 3), "UCTO"), post_ok(at(23, 7), "UVP")),
        ),
        make(
            "CR-14",
            category=N,
            status=Status.CLOSED,
            starts=at(24, 10),
            created=at(23, 10),
            started=at(24, 10),
            finished=at(24, 11),
        ),
        make("CR-99", category=N, status=Status.COMPLETED, starts=DEC),
    ]


def month(**overrides: object) -> Metrics:
    arguments: dict[str, object] = {
        "changes": november(),
        "start": NOV,
        "end": DEC,
        "caused_incident": {"CR-12", "CR-99"},
        "reviews_due": 4,
        "reviews_done_on_time": 3,
        "targets": Targets(),
    }
    arguments.update(overrides)
    return compute_metrics(**arguments)  # type: ignore[arg-type]


def test_counts_select_by_window_start_in_the_half_open_period() -> None:
    m = month()
    assert m.total == 14  # CR-0 (31 Oct 23:59) and CR-99 (1 Dec 00:00) are outside
    assert m.by_category == {S: 3, N: 6, M: 1, E: 4}
    assert m.by_status == {
        Status.PENDING_APPROVAL: 1,
        Status.APPROVED: 1,
        Status.REJECTED: 0,
        Status.CANCELLED: 1,
        Status.IN_PROGRESS: 1,
        Status.COMPLETED: 5,
        Status.FAILED: 0,
        Status.ROLLED_BACK: 1,
        Status.CLOSED: 4,
        Status.CHANGES_REQUESTED: 0,
    }


def test_outcomes_and_rates() -> None:
    m = month()
    # success: 1, 2, 3, 6, 7, 12, 13; failed: 5; rolled back: 4; unknown: 14
    assert (m.succeeded, m.failed, m.rolled_back, m.unknown_outcome, m.finished) == (7, 1, 1, 1, 9)
    assert m.success_rate == pytest.approx(77.77777777)  # 7 / 9
    assert m.rollback_rate == pytest.approx(11.11111111)  # 1 / 9
    # seed 004: % of changes causing incidents; failing or rolling back is not one by itself
    assert m.failure_rate_count == 1  # CR-12 (incident)
    assert m.change_failure_rate == pytest.approx(11.11111111)  # 1 / 9
    assert m.incidents_caused == 1 and m.incident_change_ids == ["CR-12"]  # CR-99 is outside
    assert m.emergency_count == 4
    assert m.emergency_share == pytest.approx(28.57142857)  # 4 / 14


def test_outcome_override_when_no_audit_is_loaded() -> None:
    m = month(outcomes={"CR-14": Status.COMPLETED})
    assert (m.succeeded, m.finished, m.unknown_outcome) == (8, 10, 0)
    assert m.success_rate == 80.0
    assert m.rollback_rate == 10.0
    assert m.change_failure_rate == 10.0


def test_lead_time_mean_and_p90_and_time_to_implement() -> None:
    m = month()
    # 4320 + 60 + 1440 + 10080 + 2880 + 10 + 20 + 4 + 30 + 0 + 1440 = 20284 min over 11 started
    assert m.lead_time_count == 11
    assert m.lead_time_mean == timedelta(minutes=1844)
    # sorted: 0 4 10 20 30 60 1440 1440 2880 4320 10080; rank ceil(0.9 * 11) = 10
    assert m.lead_time_p90 == timedelta(minutes=4320)
    # 120 + 30 + 60 + 240 + 120 + 60 + 30 + 15 + 60 + 60 = 795 min over 10
    assert m.implement_count == 10
    assert m.implement_time_mean == timedelta(minutes=79, seconds=30)


def test_changes_per_week_and_compliance() -> None:
    m = month()
    assert m.weeks == pytest.approx(30 / 7)
    # implemented: CR-1 to CR-8, 12, 13, 14 (not CR-9 approved, CR-10 cancelled, CR-11 pending)
    assert m.implemented == 11
    assert m.changes_per_week == pytest.approx(2.56666666)  # 11 * 7 / 30
    # due by 1 Dec: CR-6 (on time), CR-7 (overdue), CR-13 (quorum 2 h late); CR-8 is due 1 Dec 12:00
    assert (m.post_approval_on_time, m.post_approval_due) == (1, 3)
    assert m.post_approval_compliance == pytest.approx(33.33333333)
    later = month(now=at(2, month=12))
    assert (later.post_approval_on_time, later.post_approval_due) == (1, 4)
    assert later.post_approval_compliance == 25.0
    assert (m.reviews_done_on_time, m.reviews_due, m.review_compliance) == (3, 4, 75.0)


def test_default_targets_all_missed() -> None:
    m = month()
    assert {c.key: c.verdict for c in m.checks} == {
        "success_rate_min": Verdict.MISSED,  # 77.8 < 95
        "rollback_rate_max": Verdict.MISSED,  # 11.1 > 3
        "failure_rate_max": Verdict.MISSED,  # 11.1 > 5
        "changes_per_week_min": Verdict.MISSED,  # 2.57 < 10
    }


def test_targets_from_policy_and_mixed_verdicts() -> None:
    targets = Targets.from_policy(
        {
            "success_rate_min": "75%",
            "rollback_rate_max": 12,
            "failure_rate_max": 10,
            "changes_per_week_min": 2.5,
            "report": "monthly",
        }
    )
    assert targets == Targets(
        success_rate_min=75, rollback_rate_max=12, failure_rate_max=10, changes_per_week_min=2.5
    )
    m = month(targets=targets)
    assert {c.key: c.verdict for c in m.checks} == {
        "success_rate_min": Verdict.MET,
        "rollback_rate_max": Verdict.MET,
        "failure_rate_max": Verdict.MISSED,
        "changes_per_week_min": Verdict.MET,
    }


def test_targets_defaults_and_bad_values() -> None:
    assert Targets.from_policy(None) == Targets(
        success_rate_min=95, rollback_rate_max=3, failure_rate_max=5, changes_per_week_min=10
    )
    assert Targets.from_policy({"rollback_rate_max": 2}).success_rate_min == 95
    with pytest.raises(ValueError, match=r"targets\.success_rate_min"):
        Targets.from_policy({"success_rate_min": 120})
    with pytest.raises(ValueError, match=r"targets\.failure_rate_max"):
        Targets.from_policy({"failure_rate_max": "lots"})


def test_targets_compare_as_seed_004_states_them() -> None:
    """Ten completed changes in one week: 100 % success, no rollbacks, exactly 10 per week.
    Seed 004: success > 95 %, rollback < 3 %, failure < 5 %, 10+ a week."""
    week = [
        make(
            f"CR-{i}",
            category=S,
            status=Status.COMPLETED,
            starts=at(2 + i % 5, 10),
            started=at(2 + i % 5, 10),
        )
        for i in range(10)
    ]
    m = compute_metrics(changes=week, start=at(2), end=at(9), targets=Targets())
    assert m.changes_per_week == 10.0
    assert (m.success_rate, m.rollback_rate, m.change_failure_rate) == (100.0, 0.0, 0.0)
    assert all(c.verdict is Verdict.MET for c in m.checks)
    assert [c.comparison for c in m.checks] == [">", "<", "<", ">="]
    on_the_line = Targets(
        success_rate_min=100, rollback_rate_max=0, failure_rate_max=0, changes_per_week_min=10
    )
    m = compute_metrics(changes=week, start=at(2), end=at(9), targets=on_the_line)
    assert {c.key: c.verdict for c in m.checks} == {
        "success_rate_min": Verdict.MISSED,  # 100 is not above 100
        "rollback_rate_max": Verdict.MISSED,  # 0 is not below 0
        "failure_rate_max": Verdict.MISSED,
        "changes_per_week_min": Verdict.MET,  # 10 is 10+
    }


def test_empty_period_has_no_rates_and_no_division_by_zero() -> None:
    m = compute_metrics(changes=november(), start=at(2, month=12), end=at(9, month=12), targets=Targets())
    assert m.total == 0 and m.finished == 0
    assert m.by_category == {S: 0, N: 0, M: 0, E: 0}
    assert m.success_rate is None and m.rollback_rate is None and m.change_failure_rate is None
    assert m.emergency_share is None
    assert m.lead_time_mean is None and m.lead_time_p90 is None and m.implement_time_mean is None
    assert m.post_approval_compliance is None and m.review_compliance is None
    assert m.changes_per_week == 0.0
    assert {c.key: c.verdict for c in m.checks} == {
        "success_rate_min": Verdict.NO_DATA,
        "rollback_rate_max": Verdict.NO_DATA,
        "failure_rate_max": Verdict.NO_DATA,
        "changes_per_week_min": Verdict.MISSED,  # zero changes is a figure, not missing data
    }
    with pytest.raises(ValueError):
        compute_metrics(changes=[], start=DEC, end=DEC, targets=Targets())


def test_nothing_finished_still_gives_shares() -> None:
    open_ones = [make("CR-1", category=E, status=Status.IN_PROGRESS, starts=at(2), started=at(2))]
    m = compute_metrics(changes=open_ones, start=NOV, end=DEC, targets=Targets())
    assert m.success_rate is None and m.emergency_share == 100.0 and m.lead_time_mean == timedelta(days=1)


def test_outcome_of_closed_changes_follows_the_last_outcome_in_the_audit() -> None:
    closed = make(
        "CR-1",
        category=N,
        status=Status.CLOSED,
        starts=at(2),
        trail=audit(
            (AuditAction.FAILED, at(2, 1)), (AuditAction.ROLLED_BACK, at(2, 2)), (AuditAction.CLOSED, at(3))
        ),
    )
    assert outcome_of(closed) is Status.ROLLED_BACK
    assert outcome_of(closed, {"CR-1": Status.COMPLETED}) is Status.COMPLETED
    assert outcome_of(make("CR-2", category=N, status=Status.APPROVED, starts=at(2))) is None


def test_post_approval_time_falls_back_to_the_audit() -> None:
    change = make(
        "CR-1",
        category=E,
        status=Status.COMPLETED,
        starts=at(2),
        post_state=PostState.APPROVED,
        post_due=at(3),
        trail=audit((AuditAction.POST_APPROVED, at(2, 9))),
    )
    assert post_approved_at(change) == at(2, 9)
    m = compute_metrics(changes=[change], start=NOV, end=DEC, targets=Targets())
    assert (m.post_approval_on_time, m.post_approval_due) == (1, 1)
    unknown = make("CR-2", category=E, status=Status.COMPLETED, starts=at(2), post_state=PostState.APPROVED)
    m = compute_metrics(changes=[unknown], start=NOV, end=DEC, targets=Targets())
    assert m.post_approval_due == 0 and m.post_approval_compliance is None


def test_nearest_rank() -> None:
    minutes = [timedelta(minutes=v) for v in (5, 1, 4, 2, 3)]
    assert nearest_rank(minutes, 0.9) == timedelta(minutes=5)  # ceil(4.5) = 5th
    assert nearest_rank(minutes, 0.5) == timedelta(minutes=3)  # ceil(2.5) = 3rd
    assert nearest_rank(minutes[:1], 0.9) == timedelta(minutes=5)
    assert nearest_rank([], 0.9) is None


def test_weekly_series() -> None:
    series = weekly_series(changes=november(), start=NOV, end=DEC)
    assert series == [
        WeekPoint(at(1), {S: 1, N: 2, M: 0, E: 0}, 100.0, 0.0),  # CR-1, 2, 3
        WeekPoint(at(8), {S: 0, N: 1, M: 1, E: 0}, 0.0, 50.0),  # CR-4 rolled back, CR-5 failed
        WeekPoint(at(15), {S: 1, N: 0, M: 0, E: 2}, 100.0, 0.0),  # CR-6, 7, 12
        # CR-13 done, CR-14 closed (no outcome); CR-9 approved, CR-10 cancelled, CR-11 pending: not counted
        WeekPoint(at(22), {S: 0, N: 1, M: 0, E: 1}, 100.0, 0.0),
        WeekPoint(at(29), {S: 0, N: 0, M: 0, E: 1}, None, None),  # two days: CR-8 in progress
    ]
    assert sum(sum(p.by_category.values()) for p in series) == 11


def test_report_blocks_render_the_template() -> None:
    blocks = report_blocks(month(), title="Monthly Change Report - November 2026", zone=ZoneInfo("UTC"))
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Monthly Change Report - November 2026", "emoji": True},
    }
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Sun 01 Nov 2026 – Mon 30 Nov 2026 · times in UTC" in text
    assert "Changes implemented: *11* (2.6 per week) · total filed: 14" in text
    assert "Successful: 7 (77.8%) of 9 finished" in text
    assert "Rolled back: 1 (11.1%)" in text
    assert "Emergency changes: 4 (28.6%)" in text
    assert "Standard: 3" in text and "Normal: 6" in text and "Major: 1" in text and "Emergency: 4" in text
    assert ":warning: Success rate: *77.8%* (target &gt; 95%)" in text
    assert ":warning: Rollback rate: *11.1%* (target &lt; 3%)" in text
    assert ":warning: Changes per week: *2.6* (target ≥ 10)" in text
    assert "Change failure rate: 11.1% (1 of 9 finished caused an incident)" in text
    assert "1 of 3 post-approved by the deadline (33.3%)" in text
    assert "Changes causing incidents: 1\\n• Which: CR-12" in text
    assert "Still open: 3 · rejected or cancelled: 1" in text and "Closed, outcome unknown: 1" in text
    assert "Average lead time (filed → started): 1 d 6 h · p90 3 d 0 h · 11 started" in text
    assert "Average implementation time: 1 h 20 min" in text
    assert "3 of 4 reviews done on time (75.0%)" in text
    assert "Approval time (filed → approved): median no data · p90 no data · 0 approved" in text
    assert "Time to restore (MTTR): no data over 0 change-caused incidents" in text
    assert "Against" not in text  # no period before was given: no trends
    assert report_text(month(), title="November").startswith(
        "November: 11 changes implemented, success 77.8%"
    )


def test_report_blocks_with_no_data() -> None:
    m = compute_metrics(changes=[], start=NOV, end=DEC, targets=Targets())
    text = json.dumps(report_blocks(m, title="x" * 300, zone=ZoneInfo("UTC")), ensure_ascii=False)
    assert ":grey_question: Success rate: *no data* (target &gt; 95%)" in text
    assert "no post-approval came due" in text and "no review came due" in text


def test_format_duration() -> None:
    assert format_duration(timedelta(seconds=29)) == "0 min"
    assert format_duration(timedelta(minutes=45)) == "45 min"
    assert format_duration(timedelta(hours=3, minutes=20)) == "3 h 20 min"
    assert format_duration(timedelta(days=2, hours=4, minutes=10)) == "2 d 4 h"
    assert format_duration(None) == "no data"


def test_rejected_and_cancelled_changes_are_in_no_rate_and_no_weekly_count() -> None:
    changes = [
        make("CR-1", category=N, status=Status.COMPLETED, starts=at(2, 10), started=at(2, 10)),
        make("CR-2", category=N, status=Status.REJECTED, starts=at(3, 10)),
        make("CR-3", category=N, status=Status.CANCELLED, starts=at(4, 10)),
        make("CR-4", category=N, status=Status.APPROVED, starts=at(5, 10)),  # never started
    ]
    m = compute_metrics(changes=changes, start=at(2), end=at(9), targets=Targets())
    assert (m.total, m.implemented, m.finished) == (4, 1, 1)
    assert (m.success_rate, m.rollback_rate, m.change_failure_rate) == (100.0, 0.0, 0.0)
    assert m.changes_per_week == 1.0
    assert m.by_status[Status.REJECTED] == 1 and m.by_status[Status.CANCELLED] == 1
    [week] = weekly_series(changes=changes, start=at(2), end=at(9))
    assert week.by_category[N] == 1


def test_approval_cycle_time_median_and_p90() -> None:
    """Filed -> approved for changes that waited for approvers: 1 h, 2 h, 3 h, 10 h."""
    waited = [
        make(
            f"CR-{hours}",
            category=N,
            status=Status.APPROVED,
            starts=at(5, 10),
            created=at(2, 0),
            approved=at(2, hours),
            needs_approval=True,
        )
        for hours in (3, 1, 10, 2)
    ]
    others = [
        # pre-approved: approved at filing, nobody to wait for
        make("CR-20", category=S, status=Status.APPROVED, starts=at(5, 10), created=at(2), approved=at(2)),
        # an emergency's approval comes after the fact
        make(
            "CR-21",
            category=E,
            status=Status.COMPLETED,
            starts=at(5, 10),
            created=at(2),
            approved=at(4),
            needs_approval=True,
        ),
        # still waiting
        make("CR-22", category=N, status=Status.PENDING_APPROVAL, starts=at(5, 10), needs_approval=True),
    ]
    m = compute_metrics(changes=waited + others, start=at(2), end=at(9), targets=Targets())
    assert m.approval_count == 4
    assert m.approval_time_median == timedelta(hours=2)  # sorted 1 2 3 10: rank ceil(0.5 * 4) = 2
    assert m.approval_time_p90 == timedelta(hours=10)  # rank ceil(0.9 * 4) = 4
    text = json.dumps(report_blocks(m, title="Week", zone=ZoneInfo("UTC")), ensure_ascii=False)
    assert "Approval time (filed → approved): median 2 h 0 min · p90 10 h 0 min · 4 approved" in text


def test_time_to_restore_of_change_caused_incidents() -> None:
    """From the failure (FAILED, or the incident linked, whichever first) to rollback or close."""
    changes = [
        make(  # failed 10:00, rolled back 10:45, the incident linked at 11:00: 45 min
            "CR-1",
            category=N,
            status=Status.ROLLED_BACK,
            starts=at(2, 9),
            started=at(2, 9),
            trail=audit(
                (AuditAction.FAILED, at(2, 10)),
                (AuditAction.ROLLED_BACK, at(2, 10, 45)),
                (AuditAction.INCIDENT_LINKED, at(2, 11)),
            ),
        ),
        make(  # completed, then an incident linked at 12:00 and the change closed at 14:00: 2 h
            "CR-2",
            category=N,
            status=Status.CLOSED,
            starts=at(3, 9),
            started=at(3, 9),
            trail=audit(
                (AuditAction.COMPLETED, at(3, 10)),
                (AuditAction.INCIDENT_LINKED, at(3, 12)),
                (AuditAction.CLOSED, at(3, 14)),
            ),
        ),
        make(  # an incident linked, not yet rolled back or closed
            "CR-3",
            category=N,
            status=Status.COMPLETED,
            starts=at(4, 9),
            started=at(4, 9),
            trail=audit((AuditAction.COMPLETED, at(4, 10)), (AuditAction.INCIDENT_LINKED, at(4, 11))),
        ),
        make(  # failed and closed, but no incident: not in the MTTR
            "CR-4",
            category=N,
            status=Status.CLOSED,
            starts=at(5, 9),
            started=at(5, 9),
            trail=audit((AuditAction.FAILED, at(5, 10)), (AuditAction.CLOSED, at(5, 20))),
        ),
    ]
    m = compute_metrics(
        changes=changes, start=at(2), end=at(9), caused_incident={"CR-1", "CR-2", "CR-3"}, targets=Targets()
    )
    assert (m.restore_count, m.restore_open) == (2, 1)
    assert m.time_to_restore_mean == timedelta(minutes=82, seconds=30)  # (45 + 120) / 2
    assert (m.failure_rate_count, m.finished, m.change_failure_rate) == (3, 4, 75.0)
    text = json.dumps(report_blocks(m, title="Week", zone=ZoneInfo("UTC")), ensure_ascii=False)
    assert "Time to restore (MTTR): 1 h 22 min over 2 change-caused incidents · 1 not yet restored" in text


def test_trends_against_the_period_before() -> None:
    def week_of(first: int, outcomes: list[Status]) -> Metrics:
        changes = [
            make(
                f"CR-{first}-{i}",
                category=S,
                status=status,
                starts=at(first, 10 + i),
                started=at(first, 10 + i),
            )
            for i, status in enumerate(outcomes)
        ]
        return compute_metrics(changes=changes, start=at(first), end=at(first + 7), targets=Targets())

    before = week_of(2, [Status.COMPLETED] * 3 + [Status.ROLLED_BACK])  # 75 % success, 25 % rollback
    now = week_of(9, [Status.COMPLETED] * 5)  # 100 %, 0 %
    moved = {t.key: t for t in trends(now, before)}
    assert (moved["implemented"].delta, moved["implemented"].direction) == (1, Direction.UP)
    assert moved["success_rate"].delta == 25.0 and moved["success_rate"].better is True
    assert moved["rollback_rate"].direction is Direction.DOWN and moved["rollback_rate"].better is True
    assert (
        moved["change_failure_rate"].direction is Direction.FLAT
        and moved["change_failure_rate"].better is None
    )
    assert moved["approval_time_median"].direction is None  # no data either side
    assert trend_line(moved["success_rate"]) == "• Success rate: *100.0%* ↑ +25.0 pts (was 75.0%) · better"
    assert trend_line(moved["rollback_rate"]) == "• Rollback rate: *0.0%* ↓ -25.0 pts (was 25.0%) · better"
    assert trend_line(moved["implemented"]) == "• Changes implemented: *5* ↑ +1 (was 4) · better"
    assert trend_line(moved["approval_time_median"]) == "• Approval time (median): *no data* (was no data)"
    blocks = report_blocks(now, title="Week", zone=ZoneInfo("UTC"), previous=before)
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Against Mon 02 Nov – Sun 08 Nov 2026*" in text and "↑ +25.0 pts" in text
