"""The calendar's days: each change once, on the local day its window starts, in the state it
is in (closed and failed ones stay on their day), with seed 004's calendar fields: owner,
systems affected, duration, risk and status."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.listing import Counted
from domain.model import Change
from modals.chase import approval_due_flag
from modals.labels import STATUS_LABELS
from modals.text import Mrkdwn, escaped_clip, md, mention, slack_time


def duration_label(start: datetime, end: datetime) -> str:
    """`45 min`, `2 h`, `1 h 30 min`, `3 d 4 h`: a window's length, to the minute."""
    minutes = max(round((end - start).total_seconds() / 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p) or "0 min"


def calendar_line(change: Change, zone: ZoneInfo, *, flags: Sequence[Mrkdwn] = ()) -> Mrkdwn:
    """`• 10:00 *CR-…* Title · :tada: Completed · owner @U · api, db · 1 h · medium risk`"""
    draft = change.draft
    line = md(
        "• {} *{}* {} · {} · owner {} · {} · {} · {} risk",
        slack_time(draft.starts_at, zone),
        change.id,
        escaped_clip(draft.title, 80),
        STATUS_LABELS[change.status],
        mention(change.implementer),
        escaped_clip(", ".join(draft.services), 120),
        duration_label(draft.starts_at, draft.ends_at),
        change.risk.value,
    )
    for flag in flags:
        line = md("{} · {}", line, flag)
    return line


def day_lines(
    changes: Sequence[Change],
    zone: ZoneInfo,
    *,
    overdue: Collection[str] = (),
    post_overdue: Collection[str] = (),
    now: datetime | None = None,
) -> list[Mrkdwn]:
    """A bold heading per local day that has changes, then its changes by start time."""
    days: dict[date, list[Change]] = {}
    for change in sorted(changes, key=lambda c: (c.draft.starts_at, c.id)):
        days.setdefault(change.draft.starts_at.astimezone(zone).date(), []).append(change)
    lines: list[Mrkdwn] = []
    for day, listed in days.items():
        lines.append(md("*{}*", f"{day:%a %d %b}"))
        for change in listed:
            flags = flags_for(change, overdue, post_overdue, now=now, zone=zone)
            lines.append(calendar_line(change, zone, flags=flags))
    return lines


def flags_for(
    change: Change,
    overdue: Collection[str],
    post_overdue: Collection[str],
    *,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> list[Mrkdwn]:
    """What is late (or soon due) about a change, said on its line wherever it is listed."""
    flags: list[Mrkdwn] = []
    due = approval_due_flag(change, now=now, zone=zone) if now and zone else None
    if due is not None:
        flags.append(due)
    if change.id in overdue:
        flags.append(Mrkdwn(":rotating_light: overdue"))
    if change.id in post_overdue:
        flags.append(Mrkdwn(":warning: post-approval overdue"))
    return flags


def not_listed(counted: Counted, seen: set[str]) -> Counted:
    """`counted` without the changes already listed (`seen` grows with the ones kept), so
    each change appears once on the calendar."""
    kept = [c for c in counted if c.id not in seen]
    seen.update(c.id for c in kept)
    removed = len(counted) - len(kept)
    return Counted(tuple(kept), max(counted.total - removed, len(kept)), counted.exact)
