"""The monthly and weekly change reports as Block Kit: seed 001/002's template (summary,
categories, performance) plus seed 004's targets and figures, emergencies' post-approval,
review compliance, and trends against the period before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)

from domain.enums import Category, Status
from domain.metrics import Metrics, TargetCheck, Verdict
from domain.trends import Direction, Trend, Unit, trends
from modals.blocks import dump, titled_lines
from modals.text import Mrkdwn, clip, context, md, section

VERDICT_MARK = {
    Verdict.MET: ":white_check_mark:",
    Verdict.MISSED: ":warning:",
    Verdict.NO_DATA: ":grey_question:",
}
CATEGORY_LABELS = {
    Category.STANDARD: "Standard",
    Category.NORMAL: "Normal",
    Category.MAJOR: "Major",
    Category.EMERGENCY: "Emergency",
}
NO_DATA = "no data"
MAX_INCIDENT_IDS = 30


def format_rate(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate:.1f}%"


def format_number(value: float) -> str:
    """`95` rather than `95.0`, `2.5` as is: targets read as the policy author wrote them."""
    return f"{value:.1f}".removesuffix(".0")


def format_duration(value: timedelta | None) -> str:
    """Coarse and readable: `45 min`, `3 h 20 min`, `2 d 4 h` (rounded to the minute)."""
    if value is None:
        return NO_DATA
    minutes = round(value.total_seconds() / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def _share(part: int, rate: float | None) -> str:
    return f"{part}" if rate is None else f"{part} ({rate:.1f}%)"


COMPARISON_SIGNS = {">": ">", "<": "<", ">=": "≥"}
ARROWS = {Direction.UP: "↑", Direction.DOWN: "↓", Direction.FLAT: "→"}


def target_line(check: TargetCheck) -> str:
    bound = COMPARISON_SIGNS[check.comparison]
    unit = "" if check.key == "changes_per_week_min" else "%"
    actual = NO_DATA if check.actual is None else format_rate(check.actual) if unit else f"{check.actual:.1f}"
    return (
        f"{VERDICT_MARK[check.verdict]} {check.label}: *{actual}* "
        f"(target {bound} {format_number(check.target)}{unit})"
    )


def _section(heading: str, lines: list[str]) -> SectionBlock:
    """Report lines are our own text (no tokens): escaping them changes nothing shown."""
    return section(titled_lines(heading, lines))


def restore_line(m: Metrics) -> str:
    """MTTR, saying what it measures: no incident resolution time is recorded."""
    still = f" · {m.restore_open} not yet restored" if m.restore_open else ""
    return (
        f"• Time to restore (MTTR): {format_duration(m.time_to_restore_mean)} over {m.restore_count} "
        f"change-caused incidents{still} (from the failure to the rollback or close)"
    )


def format_trend_value(trend: Trend, value: float | None) -> str:
    if value is None:
        return NO_DATA
    if trend.unit is Unit.PERCENT:
        return format_rate(value)
    if trend.unit is Unit.DURATION:
        return format_duration(timedelta(seconds=value))
    return format_number(value)


def format_delta(trend: Trend) -> str:
    """`+4.0 pts`, `-2`, `+1 h 5 min`: the move, signed, in the figure's own unit."""
    delta = trend.delta
    if delta is None:
        return ""
    sign = "+" if delta >= 0 else "-"
    if trend.unit is Unit.PERCENT:
        return f"{sign}{abs(delta):.1f} pts"
    if trend.unit is Unit.DURATION:
        return f"{sign}{format_duration(timedelta(seconds=abs(delta)))}"
    return f"{sign}{format_number(abs(delta))}"


def trend_line(trend: Trend) -> str:
    """`• Success rate: *96.0%* ↑ +4.0 pts (was 92.0%) :white_check_mark:`"""
    now = format_trend_value(trend, trend.current)
    was = format_trend_value(trend, trend.previous)
    direction = trend.direction
    if direction is None:
        return f"• {trend.label}: *{now}* (was {was})"
    mark = {True: " · better", False: " · worse", None: ""}[trend.better]
    return f"• {trend.label}: *{now}* {ARROWS[direction]} {format_delta(trend)} (was {was}){mark}"


def trend_section(current: Metrics, previous: Metrics, zone: ZoneInfo) -> SectionBlock:
    first = previous.start.astimezone(zone)
    last = (previous.end - timedelta(microseconds=1)).astimezone(zone)
    heading = f"Against {first:%a %d %b} – {last:%a %d %b %Y}"
    return _section(heading, [trend_line(t) for t in trends(current, previous)])


def report_blocks(
    metrics: Metrics, *, title: str, zone: ZoneInfo, previous: Metrics | None = None
) -> list[dict[str, Any]]:
    """Blocks for chat.postMessage; slack_sdk validates each one (limits, types) in to_dict().
    With `previous`, the trends against it follow the targets."""
    m = metrics
    first = m.start.astimezone(zone)
    last = (m.end - timedelta(microseconds=1)).astimezone(zone)
    open_count = sum(
        m.by_status.get(s, 0) for s in (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS)
    )
    dropped = m.by_status.get(Status.REJECTED, 0) + m.by_status.get(Status.CANCELLED, 0)
    summary = [
        f"• Changes implemented: *{m.implemented}* ({m.changes_per_week:.1f} per week) "
        f"· total filed: {m.total}",
        f"• Successful: {_share(m.succeeded, m.success_rate)} of {m.finished} finished",
        f"• Failed: {_share(m.failed, None if m.finished == 0 else 100 * m.failed / m.finished)}",
        f"• Rolled back: {_share(m.rolled_back, m.rollback_rate)}",
        f"• Emergency changes: {_share(m.emergency_count, m.emergency_share)}",
        f"• Still open: {open_count} · rejected or cancelled: {dropped}",
    ]
    if m.unknown_outcome:
        summary.append(f"• Closed, outcome unknown: {m.unknown_outcome}")
    categories = [f"• {CATEGORY_LABELS[c]}: {m.by_category.get(c, 0)}" for c in Category]
    if m.post_approval_due:
        post = (
            f"{m.post_approval_on_time} of {m.post_approval_due} post-approved by the deadline "
            f"({format_rate(m.post_approval_compliance)})"
        )
    else:
        post = "no post-approval came due"
    emergencies = [f"• Emergency changes: {m.emergency_count}", f"• Post-approval: {post}"]
    incidents = [f"• Changes causing incidents: {m.incidents_caused}"]
    if m.incident_change_ids:
        shown = m.incident_change_ids[:MAX_INCIDENT_IDS]
        more = len(m.incident_change_ids) - len(shown)
        incidents.append("• Which: " + ", ".join(shown) + (f" and {more} more" if more else ""))
    incidents.append(
        f"• Change failure rate: {format_rate(m.change_failure_rate)} "
        f"({m.failure_rate_count} of {m.finished} finished caused an incident)"
    )
    incidents.append(restore_line(m))
    performance = [
        f"• Average lead time (filed → started): {format_duration(m.lead_time_mean)} "
        f"· p90 {format_duration(m.lead_time_p90)} · {m.lead_time_count} started",
        f"• Average implementation time: {format_duration(m.implement_time_mean)} "
        f"· {m.implement_count} implemented",
        f"• Approval time (filed → approved): median {format_duration(m.approval_time_median)} "
        f"· p90 {format_duration(m.approval_time_p90)} · {m.approval_count} approved",
    ]
    if m.reviews_due:
        review = (
            f"{m.reviews_done_on_time} of {m.reviews_due} reviews done on time "
            f"({format_rate(m.review_compliance)})"
        )
    else:
        review = "no review came due"
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, 150)),
        context(md("{} – {} · times in {}", f"{first:%a %d %b %Y}", f"{last:%a %d %b %Y}", zone.key)),
        _section("Summary", summary),
        _section("By category", categories),
        _section("Targets", [target_line(check) for check in m.checks]),
        *([trend_section(m, previous, zone)] if previous is not None else []),
        DividerBlock(),
        _section("Emergencies", emergencies),
        _section("Incidents", incidents),
        _section("Performance", performance),
        _section("Post-implementation reviews", [f"• {review}"]),
        context(
            md(
                "As of {}. Changes counted by window start. Rates are over finished changes "
                "(completed, failed, rolled back; closed ones by how they ended); rejected and "
                "cancelled changes are in no rate or per-week count.",
                f"{m.as_of.astimezone(zone):%d %b %Y %H:%M %Z}",
            )
        ),
    ]
    return dump(blocks)


def report_text(metrics: Metrics, *, title: str) -> Mrkdwn:
    """The notification / fallback text that goes with the blocks."""
    return md(
        "{}: {} changes implemented, success {}, rollback {}",
        clip(title, 150),
        str(metrics.implemented),
        format_rate(metrics.success_rate),
        format_rate(metrics.rollback_rate),
    )
