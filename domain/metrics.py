"""Change-management metrics for a period: the figures of the monthly and weekly reports
(seed 001/002) with seed 004's definitions and targets. Pure, so every figure can be checked by
hand.

Definitions (all rates are percentages, `None` when the denominator is zero):

* A change belongs to the period when its window starts (`draft.starts_at`) in [start, end).
* *Implemented* changes are those whose implementation began: in progress, completed, failed,
  rolled back or closed (or with a start time). Rejected and cancelled changes, and approved
  ones that never started, were not deployed: they are in no rate and no per-week count.
* Its *outcome* is how its implementation ended: completed, failed or rolled back. A change
  whose status is one of those has that outcome. A closed change has the outcome it had when
  it was closed: the last COMPLETED / FAILED / ROLLED_BACK entry of its audit trail (so a
  change that failed and was then rolled back counts as rolled back). The `outcomes` mapping
  overrides all of this per change id, for callers that have no audit trail loaded.
* *Finished* changes are the implemented ones with an outcome. Closed changes whose outcome
  cannot be told are counted in `unknown_outcome` and left out of every rate.
* success rate = completed / finished; rollback rate = rolled back / finished (seed 004:
  "% of changes without rollback", "% of changes requiring rollback").
* change failure rate = finished changes that caused an incident (an incident linked to
  them, `caused_incident`) / finished (seed 004: "% of changes causing incidents").
* changes per week = implemented / (days in the period / 7) (seed 004: deployments per week).
* lead time = created_at -> started_at (started changes); time to implement =
  started_at -> finished_at. p90 is the nearest-rank percentile: the value at position
  ceil(0.9 n) of the sorted list; the median is the one at ceil(0.5 n).
* approval cycle time = created_at -> approved_at, for changes that needed an approval
  (approval steps, not emergencies: theirs comes after) and got it.
* time to restore (MTTR) of change-caused incidents: no incident resolution time is recorded,
  so it runs from the failure (the change's FAILED entry, or the incident being linked,
  whichever came first) to the change being rolled back or closed. Incidents not yet restored
  are counted in `restore_open`; ones whose trail is not loaded are left out.
* post-approval compliance: of the emergencies whose post-approval came due (deadline passed
  by `now`, or already decided), the share post-approved no later than `post_due_at`.
* review compliance: of the reviews that came due in the period (the caller counts them), the
  share written by their due time.
* targets are compared as seed 004 states them: success rate > min, rollback rate < max,
  change failure rate < max, changes per week >= min ("10+").
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.enums import Category, Decision, Status
from domain.model import AuditAction, Change, PostState

OUTCOME_STATUSES = (Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK)
IMPLEMENTED_STATUSES = frozenset({Status.IN_PROGRESS, *OUTCOME_STATUSES, Status.CLOSED})
_OUTCOME_ACTIONS = {
    AuditAction.COMPLETED: Status.COMPLETED,
    AuditAction.FAILED: Status.FAILED,
    AuditAction.ROLLED_BACK: Status.ROLLED_BACK,
}
WEEK = timedelta(days=7)


class Targets(BaseModel):
    """The policy's `targets:` section, in percent (changes per week is a count). The names
    say which side is good; the comparison is seed 004's: success > 95, rollback < 3, failure < 5,
    10+ changes a week."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    success_rate_min: float = Field(default=95, ge=0, le=100)
    rollback_rate_max: float = Field(default=3, ge=0, le=100)
    failure_rate_max: float = Field(default=5, ge=0, le=100)
    changes_per_week_min: float = Field(default=10, ge=0)

    @field_validator("*", mode="before")
    @classmethod
    def _percent_sign(cls, value: Any) -> Any:
        """Let policy authors write `95%` as well as `95`."""
        if isinstance(value, str):
            return value.strip().removesuffix("%").strip()
        return value

    @classmethod
    def from_policy(cls, raw: Mapping[str, Any] | None) -> Targets:
        """Read the free-form policy mapping; unknown keys (like `report: monthly`) are ignored,
        missing ones keep the seed-004 defaults. Bad values raise ValueError naming the key."""
        if not raw:
            return cls()
        known = {name: raw[name] for name in cls.model_fields if name in raw and raw[name] is not None}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            problems = "; ".join(
                f"targets.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise ValueError(problems) from None


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    NO_DATA = "no_data"


class TargetCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # the policy key, e.g. "success_rate_min"
    label: str
    actual: float | None
    target: float
    bound: str  # "min" or "max"
    verdict: Verdict
    comparison: str = ">="  # how the actual must compare to the target: ">", "<" or ">="


class Metrics(BaseModel):
    """One period's figures. Rates are percentages; `None` means no data (nothing to divide by)."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime
    as_of: datetime
    total: int
    by_category: dict[Category, int]
    by_status: dict[Status, int]
    implemented: int
    finished: int
    succeeded: int
    failed: int
    rolled_back: int
    unknown_outcome: int
    success_rate: float | None
    rollback_rate: float | None
    failure_rate_count: int  # numerator of change_failure_rate
    change_failure_rate: float | None
    incidents_caused: int
    incident_change_ids: list[str]
    emergency_count: int
    emergency_share: float | None
    lead_time_count: int
    lead_time_mean: timedelta | None
    lead_time_p90: timedelta | None
    implement_count: int
    implement_time_mean: timedelta | None
    approval_count: int
    approval_time_median: timedelta | None
    approval_time_p90: timedelta | None
    restore_count: int
    restore_open: int
    time_to_restore_mean: timedelta | None
    weeks: float
    changes_per_week: float
    post_approval_due: int
    post_approval_on_time: int
    post_approval_compliance: float | None
    reviews_due: int
    reviews_done_on_time: int
    review_compliance: float | None
    targets: Targets
    checks: list[TargetCheck]


class WeekPoint(NamedTuple):
    week_start: datetime
    by_category: dict[Category, int]
    success_rate: float | None
    rollback_rate: float | None


def percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def mean(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    return sum(values, timedelta()) / len(values)


def nearest_rank(values: Sequence[timedelta], quantile: float) -> timedelta | None:
    """The nearest-rank percentile: no interpolation, so it is always an observed value."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(quantile * len(ordered)))
    return ordered[rank - 1]


def outcome_of(change: Change, outcomes: Mapping[str, Status] | None = None) -> Status | None:
    """COMPLETED, FAILED or ROLLED_BACK once the implementation ended, else None."""
    if outcomes and change.id in outcomes:
        override = outcomes[change.id]
        return override if override in OUTCOME_STATUSES else None
    if change.status in OUTCOME_STATUSES:
        return change.status
    if change.status is not Status.CLOSED:
        return None
    found: Status | None = None
    for entry in sorted(change.audit, key=lambda e: e.at):
        found = _OUTCOME_ACTIONS.get(entry.action, found)
    return found


def implemented(change: Change) -> bool:
    """Whether its implementation began (seed 004 counts deployments, not requests)."""
    return change.status in IMPLEMENTED_STATUSES or change.started_at is not None


def in_period(changes: Sequence[Change], start: datetime, end: datetime) -> list[Change]:
    return [c for c in changes if start <= c.draft.starts_at < end]


def post_approved_at(change: Change) -> datetime | None:
    """When the post-approval quorum completed: the last approving post decision, or the
    POST_APPROVED audit entry when the decisions are not loaded."""
    if change.post_state is not PostState.APPROVED:
        return None
    approvals = [a.at for a in change.post_approvals if a.decision is Decision.APPROVE]
    if approvals:
        return max(approvals)
    audited = [e.at for e in change.audit if e.action is AuditAction.POST_APPROVED]
    return max(audited) if audited else None


def post_approval_judgement(change: Change, as_of: datetime) -> bool | None:
    """Whether an emergency was post-approved in time; None when it does not count (not an
    emergency, nothing to approve, not yet due, or approved at an unknown moment)."""
    if change.draft.category is not Category.EMERGENCY or change.post_state in (None, PostState.NOT_NEEDED):
        return None
    decided = change.post_state in (PostState.APPROVED, PostState.REJECTED)
    came_due = change.post_due_at is not None and change.post_due_at <= as_of
    if not (decided or came_due):
        return None
    if change.post_state is not PostState.APPROVED:
        return False
    approved_at = post_approved_at(change)
    if approved_at is None:
        return None
    return change.post_due_at is None or approved_at <= change.post_due_at


_COMPARE = {">": operator.gt, "<": operator.lt, ">=": operator.ge}


def _check(key: str, label: str, actual: float | None, target: float, comparison: str) -> TargetCheck:
    """Met when `actual` compares to `target` as `comparison` says (">", "<" or ">=")."""
    if actual is None:
        verdict = Verdict.NO_DATA
    elif _COMPARE[comparison](actual, target):
        verdict = Verdict.MET
    else:
        verdict = Verdict.MISSED
    bound = "max" if comparison == "<" else "min"
    return TargetCheck(
        key=key,
        label=label,
        actual=actual,
        target=target,
        bound=bound,
        verdict=verdict,
        comparison=comparison,
    )


def compute_metrics(
    *,
    changes: Sequence[Change],
    start: datetime,
    end: datetime,
    caused_incident: Collection[str] = (),
    reviews_due: int = 0,
    reviews_done_on_time: int = 0,
    targets: Targets,
    outcomes: Mapping[str, Status] | None = None,
    now: datetime | None = None,
) -> Metrics:
    """The period's figures; `now` (default: `end`) decides which post-approvals came due."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    as_of = now or end
    selected = in_period(changes, start, end)
    volume = _volume(selected, start, end)
    results = _outcomes(selected, outcomes, set(caused_incident))
    compliance = _compliance(
        selected, as_of, reviews_due=reviews_due, reviews_done_on_time=reviews_done_on_time
    )
    return Metrics(
        start=start,
        end=end,
        as_of=as_of,
        **volume._asdict(),
        **results._asdict(),
        **_durations(selected)._asdict(),
        **_restore(selected, set(caused_incident))._asdict(),
        **compliance._asdict(),
        targets=targets,
        checks=_target_checks(results, volume, targets),
    )


class _Volume(NamedTuple):
    """How many changes, of which kinds and states, and how many a week."""

    total: int
    by_category: dict[Category, int]
    by_status: dict[Status, int]
    implemented: int
    emergency_count: int
    emergency_share: float | None
    weeks: float
    changes_per_week: float


def _volume(selected: Sequence[Change], start: datetime, end: datetime) -> _Volume:
    by_category = {category: 0 for category in Category}
    by_status = {status: 0 for status in Status}
    for change in selected:
        by_category[change.draft.category] += 1
        by_status[change.status] += 1
    total = len(selected)
    deployed = sum(1 for change in selected if implemented(change))
    weeks = (end - start) / WEEK
    return _Volume(
        total=total,
        by_category=by_category,
        by_status=by_status,
        implemented=deployed,
        emergency_count=by_category[Category.EMERGENCY],
        emergency_share=percent(by_category[Category.EMERGENCY], total),
        weeks=weeks,
        changes_per_week=deployed / weeks,
    )


class _Outcomes(NamedTuple):
    """How the implementations ended, and the rates over the finished ones."""

    finished: int
    succeeded: int
    failed: int
    rolled_back: int
    unknown_outcome: int
    success_rate: float | None
    rollback_rate: float | None
    failure_rate_count: int
    change_failure_rate: float | None
    incidents_caused: int
    incident_change_ids: list[str]


def _outcomes(
    selected: Sequence[Change], outcomes: Mapping[str, Status] | None, caused_incident: set[str]
) -> _Outcomes:
    counts = {status: 0 for status in OUTCOME_STATUSES}
    unknown = failure_count = 0
    for change in selected:
        outcome = outcome_of(change, outcomes)
        if outcome is not None:
            counts[outcome] += 1
            if change.id in caused_incident:
                failure_count += 1
        elif change.status is Status.CLOSED:
            unknown += 1
    finished = sum(counts.values())
    incident_ids = sorted(c.id for c in selected if c.id in caused_incident)
    return _Outcomes(
        finished=finished,
        succeeded=counts[Status.COMPLETED],
        failed=counts[Status.FAILED],
        rolled_back=counts[Status.ROLLED_BACK],
        unknown_outcome=unknown,
        success_rate=percent(counts[Status.COMPLETED], finished),
        rollback_rate=percent(counts[Status.ROLLED_BACK], finished),
        failure_rate_count=failure_count,
        change_failure_rate=percent(failure_count, finished),
        incidents_caused=len(incident_ids),
        incident_change_ids=incident_ids,
    )


class _Durations(NamedTuple):
    """Lead time (created -> started) and time to implement (started -> finished)."""

    lead_time_count: int
    lead_time_mean: timedelta | None
    lead_time_p90: timedelta | None
    implement_count: int
    implement_time_mean: timedelta | None
    approval_count: int
    approval_time_median: timedelta | None
    approval_time_p90: timedelta | None


def approval_time(change: Change) -> timedelta | None:
    """Filed -> approved, for a change that waited for approvers (not pre-approved, not an
    emergency, whose approval comes after the fact); None otherwise or while not approved."""
    if not change.steps or change.draft.category is Category.EMERGENCY or change.approved_at is None:
        return None
    return max(change.approved_at - change.created_at, timedelta(0))


def _durations(selected: Sequence[Change]) -> _Durations:
    lead_times: list[timedelta] = []
    implement_times: list[timedelta] = []
    approval_times: list[timedelta] = []
    for change in selected:
        if change.started_at is not None:
            lead_times.append(change.started_at - change.created_at)
            if change.finished_at is not None and change.finished_at >= change.started_at:
                implement_times.append(change.finished_at - change.started_at)
        waited = approval_time(change)
        if waited is not None:
            approval_times.append(waited)
    return _Durations(
        lead_time_count=len(lead_times),
        lead_time_mean=mean(lead_times),
        lead_time_p90=nearest_rank(lead_times, 0.9),
        implement_count=len(implement_times),
        implement_time_mean=mean(implement_times),
        approval_count=len(approval_times),
        approval_time_median=nearest_rank(approval_times, 0.5),
        approval_time_p90=nearest_rank(approval_times, 0.9),
    )


class _Restore(NamedTuple):
    """Time to restore after the change-caused incidents (see the module's definitions)."""

    restore_count: int
    restore_open: int
    time_to_restore_mean: timedelta | None


_FAILURE_ACTIONS = (AuditAction.FAILED, AuditAction.INCIDENT_LINKED)
_RESTORE_ACTIONS = (AuditAction.ROLLED_BACK, AuditAction.CLOSED)


def time_to_restore(change: Change) -> tuple[datetime, datetime | None] | None:
    """(failed at, restored at or None while not yet) from the audit trail; None when the
    trail shows no failure (not loaded, or nothing failed)."""
    trail = sorted(change.audit, key=lambda e: e.at)
    failed = next((e.at for e in trail if e.action in _FAILURE_ACTIONS), None)
    if failed is None:
        return None
    restored = next((e.at for e in trail if e.action in _RESTORE_ACTIONS and e.at >= failed), None)
    return failed, restored


def _restore(selected: Sequence[Change], caused_incident: Collection[str]) -> _Restore:
    times: list[timedelta] = []
    still_open = 0
    for change in selected:
        if change.id not in caused_incident:
            continue
        span = time_to_restore(change)
        if span is None:
            continue
        failed, restored = span
        if restored is None:
            still_open += 1
        else:
            times.append(restored - failed)
    return _Restore(restore_count=len(times), restore_open=still_open, time_to_restore_mean=mean(times))


class _Compliance(NamedTuple):
    """Emergencies post-approved in time, and reviews done in time."""

    post_approval_due: int
    post_approval_on_time: int
    post_approval_compliance: float | None
    reviews_due: int
    reviews_done_on_time: int
    review_compliance: float | None


def _compliance(
    selected: Sequence[Change], as_of: datetime, *, reviews_due: int, reviews_done_on_time: int
) -> _Compliance:
    judgements = [post_approval_judgement(change, as_of) for change in selected]
    post_due = sum(1 for judged in judgements if judged is not None)
    post_on_time = sum(1 for judged in judgements if judged)
    return _Compliance(
        post_approval_due=post_due,
        post_approval_on_time=post_on_time,
        post_approval_compliance=percent(post_on_time, post_due),
        reviews_due=reviews_due,
        reviews_done_on_time=reviews_done_on_time,
        review_compliance=percent(reviews_done_on_time, reviews_due),
    )


def _target_checks(results: _Outcomes, volume: _Volume, targets: Targets) -> list[TargetCheck]:
    return [
        _check("success_rate_min", "Success rate", results.success_rate, targets.success_rate_min, ">"),
        _check("rollback_rate_max", "Rollback rate", results.rollback_rate, targets.rollback_rate_max, "<"),
        _check(
            "failure_rate_max",
            "Change failure rate",
            results.change_failure_rate,
            targets.failure_rate_max,
            "<",
        ),
        _check(
            "changes_per_week_min",
            "Changes per week",
            volume.changes_per_week,
            targets.changes_per_week_min,
            ">=",
        ),
    ]


def weekly_series(
    *,
    changes: Sequence[Change],
    start: datetime,
    end: datetime,
    outcomes: Mapping[str, Status] | None = None,
) -> list[WeekPoint]:
    """Week buckets of 7 days from `start` (the last one may be short), for the trend chart;
    an implemented change falls in the week its window starts in; rates as in `compute_metrics`."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    points: list[WeekPoint] = []
    week_start = start
    while week_start < end:
        week_end = min(week_start + WEEK, end)
        selected = [c for c in in_period(changes, week_start, week_end) if implemented(c)]
        by_category = {category: 0 for category in Category}
        counts = {status: 0 for status in OUTCOME_STATUSES}
        for change in selected:
            by_category[change.draft.category] += 1
            outcome = outcome_of(change, outcomes)
            if outcome is not None:
                counts[outcome] += 1
        finished = sum(counts.values())
        points.append(
            WeekPoint(
                week_start=week_start,
                by_category=by_category,
                success_rate=percent(counts[Status.COMPLETED], finished),
                rollback_rate=percent(counts[Status.ROLLED_BACK], finished),
            )
        )
        week_start = week_end
    return points
