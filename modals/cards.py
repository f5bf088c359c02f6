"""The CR card and the other messages changebot posts: pure builders over domain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
)

from domain import quorum
from domain.calendar_policy import Freeze
from domain.delegation import Approver
from domain.deployments import GateWait
from domain.enums import Category, Decision, Status
from domain.limits import MAX_REASON
from domain.messages import Decided
from domain.model import ApprovalEntry, AuditAction, Change, ChangeSource, PostState
from modals.blocks import (
    SECTION_LIMIT,
    change_heading,
    change_line,
    decision_buttons,
    dump,
    line_sections,
    long_text_input,
    modal,
    titled_lines,
)
from modals.chase import approval_due_line, approver_names, own_decision_line
from modals.editing import correction_lines, edit_actions, editable
from modals.emergency import DmReader, acknowledged_by, emergency_dm_actions, post_actions, post_lines
from modals.ids import ActionId, CallbackId, Field
from modals.labels import STATUS_LABELS
from modals.metadata import RejectMetadata
from modals.review import review_detail, review_lines
from modals.template_fields import card_blocks, detail_blocks, rollback_text
from modals.text import (
    Mrkdwn,
    clip,
    clip_md,
    context,
    escaped_clip,
    join_md,
    md,
    mention,
    role_label,
    section,
    section_fields,
    slack_date,
)


def card_fallback(change: Change) -> Mrkdwn:
    """The notification text: Slack parses it as mrkdwn too, so the title is escaped."""
    status = change.status.value.replace("_", " ")
    return md("{}: {} ({})", change.id, escaped_clip(change.draft.title, 250), status)


def approval_lines(change: Change, approvers: Mapping[int, Sequence[Approver]] | None = None) -> list[Mrkdwn]:
    """Each step's count and who approved; an open step also names who can still approve
    (`approvers`, when the caller resolved them)."""
    counts = quorum.approvals_per_step(change.steps, change.approvals)
    lines = []
    for index, step in enumerate(change.steps):
        done = counts[index] >= step.count
        who = [
            mention(a.user)
            for a in change.approvals
            if a.step_index == index and a.decision is Decision.APPROVE
        ]
        mark = ":white_check_mark:" if done else ":hourglass_flowing_sand:"
        names = md(": {}", join_md(", ", who)) if who else ""
        label = role_label(step.role) + STEP_PURPOSES.get(step.purpose, "")
        open_to = (approvers or {}).get(index) if not done else None
        if open_to:
            names = md("{} · can approve: {}", names, approver_names(open_to))
        lines.append(md("{} {} {}/{}{}", mark, label, str(counts[index]), str(step.count), names))
    for entry in change.approvals:
        if entry.decision is Decision.REJECT:
            lines.append(
                md(":no_entry: Rejected by {}: {}", mention(entry.user), escaped_clip(entry.reason, 500))
            )
    return lines


STEP_PURPOSES = {"exception": " (exception)", "rule": " (review added by rule)"}


def change_card(
    change: Change,
    *,
    zone: ZoneInfo,
    with_actions: bool = True,
    for_approver: bool = False,
    waiting: Sequence[GateWait] = (),
    reader: DmReader | None = None,
    approvers: Mapping[int, Sequence[Approver]] | None = None,
    viewer: str | None = None,
    freezes: Sequence[Freeze] = (),
) -> list[dict[str, Any]]:
    """The CR card. Approvers' DM copies carry only the approval buttons (an emergency's,
    only those its `reader` may use), or, once the approver (`viewer`) decided, their
    decision instead; the channel copy also carries the implementation buttons once the
    change is approved. Open steps name who can still approve (`approvers`). Deployments
    `waiting` at its gate are listed, so approvers see what their click lets through; the
    `freezes` its window overlaps are named, so nobody plans on starting it then."""
    draft = change.draft
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{change.id} · {draft.title}", 150)),
        section_fields(_fields(change, zone)),
    ]
    if draft.description:
        blocks.append(section(escaped_clip(draft.description, SECTION_LIMIT - 10)))
    rollback = rollback_text(draft)
    if rollback:
        blocks.append(section(rollback))
    blocks += card_blocks(draft)
    if change.conflicts:
        overlaps = escaped_clip(", ".join(change.conflicts), 2900)
        blocks.append(section(md(":warning: *Overlaps* {} on the same or dependent services.", overlaps)))
    blocks += [section(line) for line in freeze_lines(freezes, zone)]
    lines = _approval_section(change, approvers, zone)
    if lines:
        blocks.append(section(titled_lines("Approvals", lines)))
    elif change.status is Status.APPROVED and change.post_state is None:
        blocks.append(context(Mrkdwn("Pre-approved: no sign-off needed.")))
    viewer = viewer if for_approver else None  # only an approver's own DM copy shows their decision
    post = post_lines(change, zone)
    emergency_dm = for_approver and change.draft.category is Category.EMERGENCY
    if post:
        blocks.append(section(titled_lines("Post-approval", post)))
        if (
            with_actions
            and change.post_approval_open
            and not emergency_dm
            and not decided(change.post_approvals, viewer)
        ):
            blocks.append(post_actions(change))
    if change.implementer != change.requester or change.started_at or change.status in IMPLEMENTED:
        blocks.append(context(_progress_line(change, zone)))
    if with_actions and not for_approver and change.status in IMPLEMENTATION_STATUSES | CLOSABLE:
        blocks.append(implementation_actions(change))
    own = own_decision_line(change, viewer, zone) if viewer else None
    if own is not None:
        blocks.append(context(own))
    if (
        with_actions
        and change.status is Status.PENDING_APPROVAL
        and not emergency_dm
        and not decided(change.approvals, viewer)
    ):
        blocks.append(decision_buttons(change, prefix="decide", request_changes=ActionId.REQUEST_CHANGES))
    if with_actions and emergency_dm:
        blocks += emergency_dm_actions(change, reader)
    if with_actions and not for_approver and editable(change):
        blocks.append(edit_actions(change))
    if waiting:
        blocks.append(context(waiting_line(waiting, zone)))
    updated = slack_date(change.updated_at, zone)
    blocks.append(context(md("Updated {} · version {}", updated, str(change.version))))
    return dump(blocks)


def _approval_section(
    change: Change, approvers: Mapping[int, Sequence[Approver]] | None, zone: ZoneInfo
) -> list[Mrkdwn]:
    """The card's Approvals lines: the on-call first, then the steps, corrections, the
    approval deadline, exceptions, overrides and reviews."""
    on_call = on_call_line(change)
    due = approval_due_line(change, zone)
    return [
        *([on_call] if on_call else []),
        *approval_lines(change, approvers),
        *correction_lines(change),
        *([due] if due else []),
        *exception_lines(change),
        *override_lines(change),
        *review_lines(change, zone),
    ]


def freeze_lines(freezes: Sequence[Freeze], zone: ZoneInfo) -> list[Mrkdwn]:
    """One line per change freeze the window overlaps; the reason is user text."""
    lines = []
    for freeze in freezes:
        until = md(" until {}", slack_date(freeze.ended_at, zone)) if freeze.ended_at else Mrkdwn("")
        reason = clip(freeze.reason or "declared in Slack", MAX_REASON)
        lines.append(
            md(
                ":no_entry_sign: *Change freeze*{}: {} (it cannot start while the freeze is on)",
                until,
                reason,
            )
        )
    return lines


def exception_lines(change: Change) -> list[Mrkdwn]:
    """The exception its requester asked for: under the lead time, or outside its windows."""
    exception = next((e for e in reversed(change.audit) if e.action is AuditAction.EXCEPTION_REQUESTED), None)
    if exception is None or not any(s.purpose == "exception" for s in change.steps):
        return []  # none asked, or an edit brought it back inside its windows and lead time
    if exception.details.get("short_notice"):
        return [
            md(
                ":warning: Short notice: {} Exception requested: {}",
                escaped_clip(str(exception.details["short_notice"]), 200),
                escaped_clip(str(exception.details.get("reason", "")), 500),
            )
        ]
    return [
        md(
            ":warning: Outside its windows or in a blackout; exception requested: {}",
            escaped_clip(str(exception.details.get("reason", "")), 500),
        )
    ]


def decided(entries: Sequence[ApprovalEntry], viewer: str | None) -> bool:
    return viewer is not None and any(entry.user == viewer for entry in entries)


def waiting_line(waiting: Sequence[GateWait], zone: ZoneInfo) -> Mrkdwn:
    """ ":hourglass: Waiting at the gate: org/api → production since <date>", escaped."""
    shown = [
        md(
            "{} → {} since {}",
            escaped_clip(w.repository, 100),
            escaped_clip(w.environment, 60),
            slack_date(w.since, zone),
        )
        for w in waiting[:10]
    ]
    more = md(" and {} more", str(len(waiting) - 10)) if len(waiting) > 10 else Mrkdwn("")
    return md(":hourglass: Waiting at the gate: {}{}", join_md(", ", shown), more)


def _fields(change: Change, zone: ZoneInfo) -> list[Mrkdwn]:
    draft = change.draft
    catalog = md(" ({})", escaped_clip(draft.catalog_id, 80)) if draft.catalog_id else ""
    fields = [
        md("*Category*\n{}{}", draft.category.value.capitalize(), catalog),
        md(
            "*Risk*\n{} (impact {}, likelihood {})",
            change.risk.value.capitalize(),
            draft.impact.value,
            draft.likelihood.value,
        ),
        md("*Status*\n{}{}", STATUS_LABELS[change.status], _post_pending(change)),
        md("*Requester*\n{}", mention(change.requester)),
        md("*Window*\n{} →\n{}", slack_date(draft.starts_at, zone), slack_date(draft.ends_at, zone)),
        md("*Services*\n{}", escaped_clip(", ".join(draft.services), 900)),
    ]
    if draft.downtime_minutes:
        fields.append(md("*Downtime*\n{} min", str(draft.downtime_minutes)))
    if draft.severity:
        fields.append(md("*Severity*\n{}", escaped_clip(draft.severity, 20)))
    if draft.incident_ref:
        fields.append(md("*Incident*\n{}", incident_link(draft.incident_ref)))
    if draft.source:
        fields.append(md("*Source*\n{}", source_link(draft.source)))
    return fields


IMPLEMENTATION_STATUSES = frozenset({Status.APPROVED, Status.IN_PROGRESS})


def _post_pending(change: Change) -> str:
    """An emergency free to go is not signed off yet: its status says so until it is."""
    if change.post_state is PostState.OVERDUE:
        return " · post-approval OVERDUE"
    return " · post-approval pending" if change.post_approval_open else ""


def incident_link(ref: str) -> Mrkdwn:
    """A URL stays a link (Slack renders bare URLs); anything else is escaped text."""
    if ref.startswith("https://") and not any(c in ref for c in "<>| "):
        return md("<{}|{}>", ref, escaped_clip(ref.rsplit("/", 1)[-1] or ref, 60))
    return escaped_clip(ref, 300)


def source_link(source: ChangeSource) -> Mrkdwn:
    """The pipeline run that filed it: a link when its URL is http(s) and one token,
    otherwise the kind, ref and URL as plain escaped text."""
    label = " ".join(part for part in (source.kind, source.ref) if part)
    url = source.web_url
    if url and not any(c in url for c in "<>| "):
        return md("<{}|{}>", url, escaped_clip(label, 200))
    return escaped_clip(" ".join(part for part in (label, source.url) if part), 700)


def override_lines(change: Change) -> list[Mrkdwn]:
    """A start outside the approved window or in a freeze: who let it, why, what it broke."""
    return [
        md(
            ":rotating_light: Started anyway by {} ({}): {}",
            mention(entry.actor),
            escaped_clip(str(entry.details.get("blocked", "")), 300),
            escaped_clip(str(entry.details.get("reason", "")), 500),
        )
        for entry in change.audit
        if entry.action is AuditAction.START_OVERRIDDEN
    ]


def on_call_line(change: Change) -> Mrkdwn | None:
    resolved = [e for e in change.audit if e.action is AuditAction.ON_CALL_RESOLVED]
    if not resolved:
        return None
    details = resolved[-1].details
    users = join_md(", ", [mention(str(u)) for u in details.get("users") or []]) or Mrkdwn("nobody")
    seen = acknowledged_by(change)
    ack = md(" · acknowledged by {}", join_md(", ", [mention(u) for u in seen])) if seen else ""
    if details.get("source") == "fallback":
        reason = escaped_clip(str(details.get("reason")), 200)
        return md(":pager: On call: {} (fallback: {}){}", users, reason, ack)
    return md(":pager: On call: {} (from PagerDuty){}", users, ack)


CLOSABLE = frozenset({Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK})
# The card names who carries the change out from its start on, failed or closed alike.
IMPLEMENTED = frozenset({Status.IN_PROGRESS, Status.CLOSED}) | CLOSABLE


def _progress_line(change: Change, zone: ZoneInfo) -> Mrkdwn:
    parts = [md("Implementer {}", mention(change.implementer))]
    if change.started_at:
        parts.append(md("started {}", slack_date(change.started_at, zone)))
    if change.finished_at:
        parts.append(md("finished {}", slack_date(change.finished_at, zone)))
    return join_md(" · ", parts)


def implementation_actions(change: Change) -> ActionsBlock:
    """Start / Completed / Failed / Rolled back (or Close once it is over; a failed change
    can still be reported rolled back)."""
    if change.status in CLOSABLE:
        buttons = []
        if change.status is Status.FAILED:
            buttons.append(
                ButtonElement(text="Rolled back", action_id=ActionId.ROLLBACK.value, value=change.id)
            )
        buttons.append(
            ButtonElement(
                text="Close the change", action_id=ActionId.CLOSE.value, value=change.id, style="primary"
            )
        )
    else:
        buttons = []
        if change.status is Status.APPROVED:
            buttons.append(
                ButtonElement(text="Start", action_id=ActionId.START.value, value=change.id, style="primary")
            )
        buttons += [
            ButtonElement(
                text="Completed",
                action_id=ActionId.COMPLETE.value,
                value=change.id,
                style=None if change.status is Status.APPROVED else "primary",
            ),
            ButtonElement(text="Failed", action_id=ActionId.FAIL.value, value=change.id, style="danger"),
            ButtonElement(text="Rolled back", action_id=ActionId.ROLLBACK.value, value=change.id),
        ]
    return ActionsBlock(block_id=f"progress:{change.id}", elements=buttons)


def change_detail(
    change: Change, *, zone: ZoneInfo, approvers: Mapping[int, Sequence[Approver]] | None = None
) -> list[dict[str, Any]]:
    """`/change show`: the card without buttons (naming who can still approve, as the card
    does), plus the plans and the audit trail."""
    blocks = change_card(change, zone=zone, with_actions=False, approvers=approvers)
    extra: list[Block] = []
    for label, text in (
        ("Why now", change.draft.justification),
        ("Implementation plan", change.draft.implementation_plan),
        ("Test plan", change.draft.test_plan),
    ):
        if text:
            extra.append(section(md("*{}*\n{}", label, escaped_clip(text, SECTION_LIMIT - 40))))
    extra += detail_blocks(change.draft)
    if review_detail(change):
        extra.append(section(review_detail(change)))
    if change.audit:
        trail = [
            md(
                "{} · {} · {}{}",
                slack_date(e.at, zone),
                mention(e.actor) if e.actor.startswith(("U", "W")) else e.actor,
                e.action.value.replace("_", " "),
                audit_details(e.details),
            )
            for e in change.audit[-15:]
        ]
        extra += [
            DividerBlock(),
            section(titled_lines("Audit trail", trail)),
        ]
    return blocks[:-1] + dump(extra) + blocks[-1:]


def audit_details(details: dict[str, Any]) -> Mrkdwn:
    """An audit entry's details as ` · key: value; …`, each value escaped and clipped (they
    hold what people typed: reasons, notes, incident links)."""
    if not details:
        return Mrkdwn("")
    parts = [
        md("{}: {}", str(key).replace("_", " "), escaped_clip(_detail_text(value), 200))
        for key, value in details.items()
        if value not in (None, "", [], {})
    ]
    return md(" · {}", clip_md(join_md("; ", parts), 600)) if parts else Mrkdwn("")


def _detail_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_detail_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_detail_text(v)}" for k, v in value.items())
    return str(value)


def change_list(
    changes: Sequence[Change], *, heading: str, zone: ZoneInfo, footer: Mrkdwn | None = None
) -> list[dict[str, Any]]:
    """One page of a list; `footer` says which page of how many, and the next page's command."""
    if not changes:
        return dump([section(md("*{}*\nNothing here.", heading))])
    lines = [change_line(c, zone) for c in changes]
    blocks: list[Block] = [section(md("*{}*", heading)), *line_sections(lines, room=SECTION_LIMIT - 50)]
    if footer:
        blocks.append(context(footer))
    return dump(blocks[:50])


def filed_message(change: Change) -> Mrkdwn:
    title = escaped_clip(change.draft.title, 150)
    if change.post_state is not None:
        return emergency_filed(change, title)
    if change.status is Status.APPROVED:
        return md(":white_check_mark: Your change *{}* {} is approved: no sign-off needed.", change.id, title)
    needed = ", ".join(f"{role_label(s.role)} ×{s.count}" for s in change.steps)
    return md(
        ":inbox_tray: Your change *{}* {} was filed and waits for approval: {}.", change.id, title, needed
    )


def emergency_filed(change: Change, title: Mrkdwn) -> Mrkdwn:
    """A declared emergency: free to start or waiting for its go-ahead; post-approval pending."""
    if change.status is Status.PENDING_APPROVAL:
        needed = ", ".join(f"{role_label(s.role)} ×{s.count}" for s in change.steps)
        now = md("It waits for the go-ahead before it starts: {}.", needed)
    else:
        now = Mrkdwn("Start the fix now.")
    post = join_md(", ", [md("{} ×{}", role_label(s.role), str(s.count)) for s in change.post_steps])
    after = md(" Post-approval pending: {}.", post) if change.post_approval_open else ""
    return md(
        ":rotating_light: Your emergency change *{}* {} is declared. {}{}", change.id, title, now, after
    )


def decided_message(change: Change, message: Decided) -> Mrkdwn:
    verb = "approved" if message.decision is Decision.APPROVE else "rejected"
    text = md(
        "{} {} your change *{}* {} as {}.",
        mention(message.by),
        verb,
        change.id,
        escaped_clip(change.draft.title, 150),
        role_label(message.role),
    )
    if message.reason:
        text = md("{} Reason: {}", text, escaped_clip(message.reason, MAX_REASON))
    return md("{} Status: {}{}.", text, STATUS_LABELS[message.status], _post_pending(change))


def reject_modal(change: Change, metadata: RejectMetadata) -> dict[str, Any]:
    return modal(
        CallbackId.REJECT_REASON,
        title="Reject change",
        submit="Reject",
        metadata=metadata,
        blocks=[
            change_heading(change),
            long_text_input(Field.REASON, "Why do you reject it?", max_length=MAX_REASON),
        ],
    )


def parse_reason(view: dict[str, Any]) -> str:
    state = (view.get("state") or {}).get("values") or {}
    value = (state.get(Field.REASON.value) or {}).get(Field.REASON.value) or {}
    reason = value.get("value") if isinstance(value, dict) else None
    return reason if isinstance(reason, str) else ""


HELP_TEXT = Mrkdwn(
    "*changebot: change requests in Slack*\n"
    "• `/change new`: file a change request\n"
    "• `/change show CR-2026-0001`: a change, its approvals and audit trail\n"
    "• `/change list [mine|pending|upcoming|in-progress|overdue|post-overdue] [--page N]`: "
    "your changes, changes awaiting approval, the next two weeks, in progress, overdue, "
    "emergencies with post-approval overdue; 20 a page\n"
    "• `/change emergency [incident]`: declare an emergency change (fix first, post-approve later)\n"
    "• `/change calendar [today|week|2026-12-01]`: the change calendar\n"
    "• `/change freeze start [2026-12-24] [reason]` / `/change freeze end`: an ad-hoc change freeze "
    "(until lifted, or until that day)\n"
    "• `/change start CR-2026-0001 [--override reason]`: start a change (override: outside its window)\n"
    "• `/change incident CR-2026-0001 INC-123`: record that a change caused an incident\n"
    "• `/change report [week|month|2026-10]`: success, rollback and failure rates with a chart\n"
    "• `/change reschedule CR-2026-0001`: move a change's window\n"
    "• `/change edit CR-2026-0001`: correct a change (what approvers judged goes back to them)\n"
    "• `/change cancel CR-2026-0001 [reason]`: cancel a change that has not started\n"
    "• `/change delegate @user until 2026-12-24` / `/change delegate off`: while you are away, "
    "another member of your role approves for you\n"
    "• `/change help`: this help"
)


def help_blocks(prefix: Mrkdwn | None = None, *, with_help: bool = False) -> list[dict[str, Any]]:
    """The help; with a `prefix` (an answer or a refusal), that one line alone unless
    `with_help` asks for the help under it."""
    blocks: list[Block] = []
    if prefix:
        blocks.append(section(prefix))
    if not prefix or with_help:
        blocks.append(section(HELP_TEXT))
    return dump(blocks)
