"""Timeline notices, implementation updates, the calendar digest and their modals."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    DateTimePickerElement,
    HeaderBlock,
    InputBlock,
)

from domain.calendar_policy import Freeze
from domain.durations import format_offset
from domain.enums import Status
from domain.limits import MAX_NOTES
from domain.messages import FreezeChanged, FreezeCovers, ProgressUpdate, Rescheduled, StakeholderNotice
from domain.model import Change
from domain.policy import Policy
from domain.read_models import CalendarView, ProgressAction
from domain.timeline import MONITORING_END, OVERRUN, SHORT_NOTICE, spec_for
from modals.blocks import (
    SECTION_LIMIT,
    blackout_line,
    change_heading,
    dump,
    line_sections,
    long_text_input,
    modal,
    titled_lines,
)
from modals.calendar_days import day_lines, flags_for, not_listed
from modals.cards import implementation_actions
from modals.counts import ICS_FEED, list_command, more_line, total_label
from modals.ids import CallbackId, Field
from modals.labels import STATUS_LABELS
from modals.metadata import ProgressMetadata, RescheduleMetadata
from modals.text import (
    Mrkdwn,
    clip,
    clip_md,
    context,
    escaped_clip,
    join_md,
    md,
    mention,
    section,
    slack_date,
)


def notice_message(
    change: Change, *, key: str, late: bool, due_at: datetime, policy: Policy, actions: bool
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """The text of one timeline notice, with the implementer mentioned where action is due."""
    zone = policy.zone
    title = md("*{}* {}", change.id, escaped_clip(change.draft.title, 150))
    window = md("{} → {}", slack_date(change.draft.starts_at, zone), slack_date(change.draft.ends_at, zone))
    spec = spec_for(policy.timeline, key)
    if key == SHORT_NOTICE:
        label = "Short notice"
        body = Mrkdwn("Approved less than a day before its window: the usual heads-up could not go out.")
    elif key == OVERRUN:
        label = "Overrun"
        body = md(
            ":rotating_light: The window ended {} but the change is still {}. "
            "{}, complete it, or report it failed or rolled back.",
            slack_date(change.draft.ends_at, zone),
            STATUS_LABELS[change.status].split(" ", 1)[1].lower(),
            mention(change.implementer),
        )
    elif key == MONITORING_END:
        label = "Monitoring done"
        body = md(
            "The monitoring period after completion is over. {}, if all is well, close the change.",
            mention(change.implementer),
        )
    else:
        label = format_offset(spec.at) if spec else key
        body = escaped_clip(spec.text if spec else key, 500)
        if spec and (spec.buttons == "implementation" or spec.check_readiness):
            body = md("{} {}", body, mention(change.implementer))
        if spec and spec.check_readiness:
            body = md("{}\n{}", body, readiness(change))
    if late:
        body = md("{}\n:hourglass: Sent late: this was due {}.", body, slack_date(due_at, zone))
    triggers = [escaped_clip(t, 100) for t in policy.timeline.rollback_triggers]
    if change.draft.rollback_triggers:  # this change's own, next to the policy's
        triggers.append(escaped_clip(" ".join(change.draft.rollback_triggers.split()), 500))
    if triggers and key in ("t_0", "t_minus_1h"):
        body = md("{}\nRoll back if: {}.", body, join_md("; ", triggers))
    text = clip_md(md("{} · {} · {}\n{}", label, title, window, body), SECTION_LIMIT)
    blocks: list[Block] = [section(text)]
    if actions and (key in (OVERRUN, MONITORING_END, SHORT_NOTICE) or (spec and spec.buttons != "none")):
        blocks.append(implementation_actions(change))
    fallback = md("{}: {} {}", label, change.id, escaped_clip(change.draft.title, 250))
    return fallback, dump(blocks)


def stakeholder_message(
    change: Change, message: StakeholderNotice, *, policy: Policy
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """Document 001's stakeholder notification: what, when, the services, the expected
    impact and downtime, whom to contact and how it is rolled back. Everything typed is
    escaped."""
    zone, draft = policy.zone, change.draft
    spec = spec_for(policy.timeline, message.key)
    ahead = spec is not None and spec.at < timedelta(0)
    subject = "SCHEDULED MAINTENANCE" if ahead else "MAINTENANCE UNDER WAY"
    downtime = (
        md("up to {} min of downtime", f"{draft.downtime_minutes:,}")
        if draft.downtime_minutes
        else Mrkdwn("no downtime expected")
    )
    contact = join_md(
        " · ",
        [md("implementer {}", mention(change.implementer)), md("requester {}", mention(change.requester))],
    )
    rollback = (
        escaped_clip(draft.rollback_plan, 400) if draft.rollback_plan.strip() else Mrkdwn("none documented")
    )
    lines = [
        md("*[{}]* *{}* {}", subject, change.id, escaped_clip(draft.title, 150)),
        md(
            "*Maintenance window:* {} → {}",
            slack_date(draft.starts_at, zone),
            slack_date(draft.ends_at, zone),
        ),
        md(
            "*Services affected:* {}",
            join_md(", ", [escaped_clip(s, 60) for s in draft.services]) or "none named",
        ),
        md("*Expected impact:* {} impact, {}", draft.impact.value, downtime),
        md("*What we're doing:* {}", escaped_clip(draft.description, 800)),
        md("*Contact:* {}", contact),
        md("*Rollback plan:* {}", rollback),
    ]
    if message.late:
        lines.append(md(":hourglass: Sent late: this was due {}.", slack_date(message.due_at, zone)))
    text = clip_md(join_md("\n", lines), SECTION_LIMIT)
    fallback = md("[{}] {} {}", subject, change.id, escaped_clip(draft.title, 250))
    return fallback, dump([section(text)])


def readiness(change: Change) -> Mrkdwn:
    approved = change.status is Status.APPROVED or change.status is Status.IN_PROGRESS
    checks = [
        (approved, "approvals complete"),
        (bool(change.draft.rollback_plan), "rollback plan documented"),
        (bool(change.draft.test_plan), "test plan documented"),
    ]
    return join_md(" · ", [f"{':white_check_mark:' if ok else ':warning:'} {what}" for ok, what in checks])


PROGRESS_WORDS = {
    Status.IN_PROGRESS: ":construction: started",
    Status.COMPLETED: ":tada: completed",
    Status.FAILED: ":x: failed",
    Status.ROLLED_BACK: ":leftwards_arrow_with_hook: rolled back",
    Status.CLOSED: ":lock: closed",
    Status.CANCELLED: ":heavy_multiplication_x: cancelled",
}


def progress_message(change: Change, message: ProgressUpdate) -> Mrkdwn:
    status = message.status
    text = md(
        "{} {} *{}* {}.",
        mention(message.by),
        PROGRESS_WORDS.get(status, status.value),
        change.id,
        escaped_clip(change.draft.title, 150),
    )
    if message.notes:
        text = md("{}\n> {}", text, escaped_clip(message.notes, 1500))
    return text


def rescheduled_message(change: Change, message: Rescheduled, zone: ZoneInfo) -> Mrkdwn:
    moved_from = Mrkdwn("")
    if message.moved_from is not None:
        start, end = message.moved_from
        moved_from = md("from {} → {} ", slack_date(start, zone), slack_date(end, zone))
    text = md(
        ":calendar: {} moved *{}* {}to {} → {}.",
        mention(message.by),
        change.id,
        moved_from,
        slack_date(change.draft.starts_at, zone),
        slack_date(change.draft.ends_at, zone),
    )
    if message.reapproval:
        text = md("{} Its approvals were for the old window, so it needs approval again.", text)
    return text


def freeze_message(message: FreezeChanged, zone: ZoneInfo) -> Mrkdwn:
    by = mention(message.by)
    reason = md(": {}", escaped_clip(message.reason, 500)) if message.reason else Mrkdwn("")
    if message.started and message.until is not None:
        return md(
            ":no_entry_sign: {} declared a change freeze until {}{}. No changes but emergencies until then.",
            by,
            slack_date(message.until, zone),
            reason,
        )
    if message.started:
        return md(
            ":no_entry_sign: {} declared a change freeze{}. No changes but emergencies until it is lifted.",
            by,
            reason,
        )
    if message.as_planned:
        return md(":white_check_mark: The change freeze{} ended as planned.", reason)
    return md(":white_check_mark: {} lifted the change freeze.", by)


def freeze_covers_message(change: Change, message: FreezeCovers, zone: ZoneInfo) -> Mrkdwn:
    """An owner's approved change falls inside a new freeze: it waits, or moves."""
    until = md("until {}", slack_date(message.until, zone)) if message.until else Mrkdwn("until it is lifted")
    reason = md(": {}", escaped_clip(message.reason, 300)) if message.reason else Mrkdwn("")
    return md(
        ":no_entry_sign: {} declared a change freeze {}{}. Your approved change *{}* {} ({} → {}) "
        "falls inside it and cannot start while it is on: reschedule it, or wait for the freeze to end.",
        mention(message.by),
        until,
        reason,
        change.id,
        escaped_clip(change.draft.title, 150),
        slack_date(change.draft.starts_at, zone),
        slack_date(change.draft.ends_at, zone),
    )


def _lines(
    changes: Sequence[Change],
    zone: ZoneInfo,
    *,
    show_end: bool = False,
    overdue: Collection[str] = (),
    post_overdue: Collection[str] = (),
    now: datetime | None = None,
) -> list[Mrkdwn]:
    """One line per change, with what is late or due about it."""
    out = []
    for change in changes:
        when = slack_date(change.draft.ends_at if show_end else change.draft.starts_at, zone)
        flags = flags_for(change, overdue, post_overdue, now=now, zone=zone)
        flag = md(" · {}", join_md(" · ", flags)) if flags else Mrkdwn("")
        out.append(
            md(
                "• {} *{}* {} · {} · owner {} · {} · {} risk{}",
                when,
                change.id,
                escaped_clip(change.draft.title, 80),
                STATUS_LABELS[change.status],
                mention(change.implementer),
                escaped_clip(", ".join(change.draft.services), 120),
                change.risk.value,
                flag,
            )
        )
    return out


def calendar_blocks(view: CalendarView, *, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each change once: on its day (in the state it is in), then what else needs attention
    (not listed above). A past range shows what happened on it, not today's open items."""
    blocks: list[Block] = [HeaderBlock(text=clip(view.range.title, 150))]
    first_day = f"{view.range.start.astimezone(zone):%Y-%m-%d}"
    day = md("`/change calendar {}` for one day, or {}", first_day, ICS_FEED)
    scheduled_rest = day if view.range.end - view.range.start > timedelta(hours=25) else ICS_FEED
    past = view.range.end <= view.now
    overdue = {c.id for c in view.overdue}
    post_overdue = {c.id for c in view.post_approval_overdue}
    listed = day_lines(view.scheduled, zone, overdue=overdue, post_overdue=post_overdue, now=view.now)
    heading = "What happened" if past else "Scheduled"
    if listed:
        more = more_line(view.scheduled, len(view.scheduled), scheduled_rest)
        title = md("*{}* ({})", heading, total_label(view.scheduled))
        blocks += line_sections([title, *listed, *([more] if more else [])], room=SECTION_LIMIT - 20)
    else:
        blocks.append(section(md("*{}*\nNone.", heading)))
    seen = {c.id for c in view.scheduled}
    # The most urgent first: a change is listed in the first section that has it, and its
    # line says what else is late about it.
    sections = [
        (
            "Also emergencies with post-approval overdue",
            view.post_approval_overdue,
            list_command("post-overdue"),
            False,
        ),
        ("Also overdue: window ended, not completed", view.overdue, list_command("overdue"), True),
        ("Also waiting for approval", view.awaiting_approval, list_command("pending"), False),
        ("Also in progress", view.in_progress, list_command("in-progress"), False),
    ]
    for heading, counted, rest, show_end in [] if past else sections:
        others = not_listed(counted, seen)
        lines = _lines(
            others,
            zone,
            show_end=show_end,
            overdue=() if counted is view.overdue else overdue,
            post_overdue=() if counted is view.post_approval_overdue else post_overdue,
            now=view.now,
        )
        more = more_line(others, len(lines), rest)
        if not lines and more is None:
            continue  # nothing beyond what the days list
        title = md("*{}* ({})", heading, total_label(others))
        blocks += line_sections([title, *lines, *([more] if more else [])], room=SECTION_LIMIT - 20)
    periods = [
        md(
            "• :no_entry_sign: {} (freeze by {}{})",
            escaped_clip(f.reason or "Change freeze", 100),
            mention(f.started_by),
            freeze_until(f, view.now, zone),
        )
        for f in view.freezes
    ]
    periods += [md("• {}", blackout_line(b, zone, name_limit=100)) for b in view.blackouts[:20]]
    if len(view.blackouts) > 20:
        periods.append(md("… and {} more blackout periods: {}", f"{len(view.blackouts) - 20:,}", ICS_FEED))
    if periods:
        blocks.append(section(titled_lines("Blackouts and freezes", periods)))
    blocks.append(context(md("As of {} · times in your time zone", slack_date(view.now, zone))))
    return dump(blocks[:50])


def freeze_until(freeze: Freeze, now: datetime, zone: ZoneInfo) -> Mrkdwn:
    """ ", until lifted" or ", until <date>" for a freeze still on at `now`; "" once over."""
    if freeze.ended_at is None:
        return Mrkdwn(", until lifted")
    if freeze.ended_at > now:
        return md(", until {}", slack_date(freeze.ended_at, zone))
    return Mrkdwn("")


def notes_modal(change: Change, metadata: ProgressMetadata) -> dict[str, Any]:
    action = ProgressAction(metadata.action)
    title = "Report a failure" if action is ProgressAction.FAIL else "Report a rollback"
    return modal(
        CallbackId.PROGRESS_NOTES,
        title=title,
        submit="Report",
        metadata=metadata,
        blocks=[
            change_heading(change),
            long_text_input(Field.NOTES, "What happened?", max_length=MAX_NOTES),
        ],
    )


def reschedule_modal(change: Change) -> dict[str, Any]:
    return modal(
        CallbackId.RESCHEDULE,
        title="Reschedule change",
        submit="Reschedule",
        metadata=RescheduleMetadata(change_id=change.id),
        blocks=[
            change_heading(change),
            _moment_input(Field.STARTS_AT, "Starts", change.draft.starts_at),
            _moment_input(Field.ENDS_AT, "Ends", change.draft.ends_at),
        ],
    )


def _moment_input(field: Field, label: str, moment: datetime) -> InputBlock:
    return InputBlock(
        block_id=field.value,
        label=label,
        element=DateTimePickerElement(action_id=field.value, initial_date_time=int(moment.timestamp())),
    )


def field_value(view: dict[str, Any], field: Field, key: str) -> Any:
    state = (view.get("state") or {}).get("values") or {}
    value = (state.get(field.value) or {}).get(field.value) or {}
    return value.get(key) if isinstance(value, dict) else None
