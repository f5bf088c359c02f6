"""The monthly change report as Block Kit: seed 001/002's template (summary, categories,
performance) plus the seed-004 targets, emergencies' post-approval and review compliance."""

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


def target_line(check: TargetCheck) -> str:
    bound = "≥" if check.bound == "min" else "≤"
    unit = "" if check.key == "changes_per_week_min" else "%"
    actual = NO_DATA if check.actual is None else format_rate(check.actual) if unit else f"{check.actual:.1f}"
    return (
        f"{VERDICT_MARK[check.verdict]} {check.label}: *{actual}* "
        f"(target {bound} {format_number(check.target)}{unit})"
    )


def _section(heading: str, lines: list[str]) -> SectionBlock:
    """Report lines are our own text (no tokens): escaping them changes nothing shown."""
    return section(titled_lines(heading, lines))


def report_blocks(metrics: Metrics, *, title: str, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Blocks for chat.postMessage; slack_sdk validates each one (limits, types) in to_dict()."""
    m = metrics
    first = m.start.astimezone(zone)
    last = (m.end - timedelta(microseconds=1)).astimezone(zone)
    open_count = sum(
        m.by_status.get(s, 0) for s in (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS)
    )
    dropped = m.by_status.get(Status.REJECTED, 0) + m.by_status.get(Status.CANCELLED, 0)
    summary = [
        f"• Total changes: *{m.total}* ({m.changes_per_week:.1f} per week)",
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
        f"({m.failure_rate_count} of {m.finished} finished: failed, rolled back or caused an incident)"
    )
    performance = [
        f"• Average lead time (filed → started): {format_duration(m.lead_time_mean)} "
        f"· p90 {format_duration(m.lead_time_p90)} · {m.lead_time_count} started",
        f"• Average implementation time: {format_duration(m.implement_time_mean)} "
        f"· {m.implement_count} implemented",
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
        DividerBlock(),
        _section("Emergencies", emergencies),
        _section("Incidents", incidents),
        _section("Performance", performance),
        _section("Post-implementation reviews", [f"• {review}"]),
        context(
            md(
                "As of {}. Changes counted by window start. Rates are over finished changes "
                "(completed, failed, rolled back; closed ones by how they ended).",
                f"{m.as_of.astimezone(zone):%d %b %Y %H:%M %Z}",
            )
        ),
    ]
    return dump(blocks)


def report_text(metrics: Metrics, *, title: str) -> Mrkdwn:
    """The notification / fallback text that goes with the blocks."""
    return md(
        "{}: {} changes, success {}, rollback {}",
        clip(title, 150),
        str(metrics.total),
        format_rate(metrics.success_rate),
        format_rate(metrics.rollback_rate),
    )
