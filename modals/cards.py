"""The CR card and the other messages changebot posts: pure builders over domain values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from domain import quorum
from domain.enums import Decision, Status
from domain.model import AuditAction, Change
from modals.emergency import post_actions, post_lines
from modals.ids import ActionId, CallbackId, Field
from modals.metadata import RejectMetadata
from modals.text import clip, escaped_clip, mention, role_label, slack_date

STATUS_LABELS = {
    Status.PENDING_APPROVAL: ":hourglass_flowing_sand: Waiting for approval",
    Status.APPROVED: ":white_check_mark: Approved",
    Status.REJECTED: ":no_entry: Rejected",
    Status.CANCELLED: ":heavy_multiplication_x: Cancelled",
    Status.IN_PROGRESS: ":construction: In progress",
    Status.COMPLETED: ":tada: Completed",
    Status.FAILED: ":x: Failed",
    Status.ROLLED_BACK: ":leftwards_arrow_with_hook: Rolled back",
    Status.CLOSED: ":lock: Closed",
}
SECTION_LIMIT = 3000


def _blocks(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """to_dict() runs slack_sdk's validators: lengths and counts fail here, not in Slack."""
    return [block.to_dict() for block in blocks]


def card_fallback(change: Change) -> str:
    return clip(f"{change.id}: {change.draft.title} ({change.status.value.replace('_', ' ')})", 300)


def approval_lines(change: Change) -> list[str]:
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
        names = f": {', '.join(who)}" if who else ""
        label = role_label(step.role) + (" (exception)" if step.purpose == "exception" else "")
        lines.append(f"{mark} {label} {counts[index]}/{step.count}{names}")
    for entry in change.approvals:
        if entry.decision is Decision.REJECT:
            lines.append(f":no_entry: Rejected by {mention(entry.user)}: {escaped_clip(entry.reason, 500)}")
    return lines


def change_card(
    change: Change, *, zone: ZoneInfo, with_actions: bool = True, for_approver: bool = False
) -> list[dict[str, Any]]:
    """The CR card. Approvers' DM copies carry only the approval buttons; the channel
    copy also carries the implementation buttons once the change is approved."""
    draft = change.draft
    services = ", ".join(draft.services)
    fields = [
        MarkdownTextObject(
            text=f"*Category*\n{draft.category.value.capitalize()}"
            + (f" ({escaped_clip(draft.catalog_id, 80)})" if draft.catalog_id else "")
        ),
        MarkdownTextObject(
            text=f"*Risk*\n{change.risk.value.capitalize()} "
            f"(impact {draft.impact.value}, likelihood {draft.likelihood.value})"
        ),
        MarkdownTextObject(text=f"*Status*\n{STATUS_LABELS[change.status]}"),
        MarkdownTextObject(text=f"*Requester*\n{mention(change.requester)}"),
        MarkdownTextObject(
            text=f"*Window*\n{slack_date(draft.starts_at, zone)} →\n{slack_date(draft.ends_at, zone)}"
        ),
        MarkdownTextObject(text=f"*Services*\n{escaped_clip(services, 900)}"),
    ]
    if draft.downtime_minutes:
        fields.append(MarkdownTextObject(text=f"*Downtime*\n{draft.downtime_minutes} min"))
    if draft.severity:
        fields.append(MarkdownTextObject(text=f"*Severity*\n{escaped_clip(draft.severity, 20)}"))
    if draft.incident_ref:
        fields.append(MarkdownTextObject(text=f"*Incident*\n{incident_link(draft.incident_ref)}"))
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{change.id} · {draft.title}", 150)),
        SectionBlock(fields=fields),
    ]
    if draft.description:
        blocks.append(SectionBlock(text=escaped_clip(draft.description, SECTION_LIMIT - 10)))
    if draft.rollback_plan:
        blocks.append(SectionBlock(text="*Rollback plan*\n" + escaped_clip(draft.rollback_plan, 1500)))
    if change.conflicts:
        blocks.append(
            SectionBlock(
                text=clip(
                    ":warning: *Overlaps* "
                    + ", ".join(change.conflicts)
                    + " on the same or dependent services.",
                    3000,
                )
            )
        )
    lines = approval_lines(change)
    exception = next((e for e in change.audit if e.action is AuditAction.EXCEPTION_REQUESTED), None)
    if exception is not None:
        lines.append(
            ":warning: Outside its windows or in a blackout; exception requested: "
            + escaped_clip(str(exception.details.get("reason", "")), 500)
        )
    from modals.review import review_lines  # the review module builds on this one

    lines += review_lines(change, zone)
    on_call = on_call_line(change)
    if on_call:
        lines.insert(0, on_call)
    if lines:
        blocks.append(SectionBlock(text=clip("*Approvals*\n" + "\n".join(lines), SECTION_LIMIT)))
    elif change.status is Status.APPROVED:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Pre-approved: no sign-off needed.")]))
    post = post_lines(change, zone)
    if post:
        blocks.append(SectionBlock(text=clip("*Post-approval*\n" + "\n".join(post), SECTION_LIMIT)))
        if with_actions and change.post_approval_open:
            blocks.append(post_actions(change))
    if change.implementer != change.requester or change.status in (Status.IN_PROGRESS, Status.COMPLETED):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_progress_line(change, zone))]))
    if with_actions and not for_approver and change.status in IMPLEMENTATION_STATUSES | CLOSABLE:
        blocks.append(implementation_actions(change))
    if with_actions and change.status is Status.PENDING_APPROVAL:
        blocks.append(
            ActionsBlock(
                block_id=f"decide:{change.id}",
                elements=[
                    ButtonElement(
                        text="Approve", action_id=ActionId.APPROVE.value, value=change.id, style="primary"
                    ),
                    ButtonElement(
                        text="Reject", action_id=ActionId.REJECT.value, value=change.id, style="danger"
                    ),
                ],
            )
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Updated {slack_date(change.updated_at, zone)} · version {change.version}"
                )
            ]
        )
    )
    return _blocks(blocks)


IMPLEMENTATION_STATUSES = frozenset({Status.APPROVED, Status.IN_PROGRESS})


def incident_link(ref: str) -> str:
    """A URL stays a link (Slack renders bare URLs); anything else is escaped text."""
    if ref.startswith("https://") and not any(c in ref for c in "<>| "):
        return f"<{ref}|{escaped_clip(ref.rsplit('/', 1)[-1] or ref, 60)}>"
    return escaped_clip(ref, 300)


def on_call_line(change: Change) -> str | None:
    resolved = [e for e in change.audit if e.action is AuditAction.ON_CALL_RESOLVED]
    if not resolved:
        return None
    details = resolved[-1].details
    users = ", ".join(mention(str(u)) for u in details.get("users") or []) or "nobody"
    line = f":pager: On call: {users}"
    if details.get("source") == "fallback":
        line += f" (fallback: {escaped_clip(str(details.get('reason')), 200)})"
    else:
        line += " (from PagerDuty)"
    return line


CLOSABLE = frozenset({Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK})


def _progress_line(change: Change, zone: ZoneInfo) -> str:
    parts = [f"Implementer {mention(change.implementer)}"]
    if change.started_at:
        parts.append(f"started {slack_date(change.started_at, zone)}")
    if change.finished_at:
        parts.append(f"finished {slack_date(change.finished_at, zone)}")
    return " · ".join(parts)


def implementation_actions(change: Change) -> ActionsBlock:
    """Start / Completed / Failed / Rolled back (or Close once it is over)."""
    if change.status in CLOSABLE:
        buttons = [
            ButtonElement(
                text="Close the change", action_id=ActionId.CLOSE.value, value=change.id, style="primary"
            )
        ]
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


def change_detail(change: Change, *, zone: ZoneInfo) -> list[dict[str, Any]]:
    """`/change show`: the card without buttons, plus the plans and the audit trail."""
    blocks = change_card(change, zone=zone, with_actions=False)
    extra: list[Block] = []
    for label, text in (
        ("Why now", change.draft.justification),
        ("Implementation plan", change.draft.implementation_plan),
        ("Test plan", change.draft.test_plan),
    ):
        if text:
            extra.append(SectionBlock(text=f"*{label}*\n" + escaped_clip(text, SECTION_LIMIT - 40)))
    from modals.review import review_detail

    if review_detail(change):
        extra.append(SectionBlock(text=review_detail(change)))
    if change.audit:
        trail = [
            f"{slack_date(e.at, zone)} · {mention(e.actor) if e.actor.startswith(('U', 'W')) else e.actor}"
            f" · {e.action.value.replace('_', ' ')}"
            for e in change.audit[-15:]
        ]
        extra += [
            DividerBlock(),
            SectionBlock(text=clip("*Audit trail*\n" + "\n".join(trail), SECTION_LIMIT)),
        ]
    return blocks[:-1] + _blocks(extra) + blocks[-1:]


def change_list(
    changes: Sequence[Change], *, heading: str, zone: ZoneInfo, footer: str | None = None
) -> list[dict[str, Any]]:
    """One page of a list; `footer` says which page of how many, and the next page's command."""
    if not changes:
        return _blocks([SectionBlock(text=f"*{heading}*\nNothing here.")])
    lines = [
        f"*{c.id}* {escaped_clip(c.draft.title, 80)} · {STATUS_LABELS[c.status]} · "
        f"{c.risk.value} risk · {slack_date(c.draft.starts_at, zone)}"
        for c in changes
    ]
    blocks: list[Block] = [SectionBlock(text=f"*{heading}*")]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > SECTION_LIMIT - 50:
            blocks.append(SectionBlock(text="\n".join(chunk)))
            chunk = []
        chunk.append(line)
    blocks.append(SectionBlock(text="\n".join(chunk)))
    if footer:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return _blocks(blocks[:50])


def filed_message(change: Change) -> str:
    title = escaped_clip(change.draft.title, 150)
    if change.status is Status.APPROVED:
        return f":white_check_mark: Your change *{change.id}* {title} is approved: no sign-off needed."
    needed = ", ".join(f"{role_label(s.role)} ×{s.count}" for s in change.steps)
    return f":inbox_tray: Your change *{change.id}* {title} was filed and waits for approval: {needed}."


def decided_message(change: Change, payload: dict[str, Any]) -> str:
    verb = "approved" if payload.get("decision") == Decision.APPROVE.value else "rejected"
    text = (
        f"{mention(str(payload.get('by')))} {verb} your change *{change.id}* "
        f"{escaped_clip(change.draft.title, 150)} as {role_label(str(payload.get('role')))}."
    )
    if payload.get("reason"):
        text += f" Reason: {escaped_clip(str(payload['reason']), 1000)}"
    status = Status(str(payload.get("status")))
    return text + f" Status: {STATUS_LABELS[status]}."


def reject_modal(change: Change, metadata: RejectMetadata) -> dict[str, Any]:
    view = View(
        type="modal",
        callback_id=CallbackId.REJECT_REASON.value,
        title="Reject change",
        submit="Reject",
        close="Cancel",
        private_metadata=metadata.model_dump_json(),
        blocks=[
            SectionBlock(text=f"*{change.id}* {escaped_clip(change.draft.title, 200)}"),
            _reason_input(),
        ],
    )
    return view.to_dict()


def _reason_input() -> Block:
    from slack_sdk.models.blocks import InputBlock, PlainTextInputElement

    return InputBlock(
        block_id=Field.REASON.value,
        label="Why do you reject it?",
        element=PlainTextInputElement(action_id=Field.REASON.value, multiline=True, max_length=1000),
    )


def parse_reason(view: dict[str, Any]) -> str:
    state = (view.get("state") or {}).get("values") or {}
    value = (state.get(Field.REASON.value) or {}).get(Field.REASON.value) or {}
    reason = value.get("value") if isinstance(value, dict) else None
    return reason if isinstance(reason, str) else ""


HELP_TEXT = (
    "*changebot: change requests in Slack*\n"
    "• `/change new`: file a change request\n"
    "• `/change show CR-2026-0001`: a change, its approvals and audit trail\n"
    "• `/change list [mine|pending|upcoming|in-progress|overdue|post-overdue] [--page N]`: "
    "your changes, changes awaiting approval, the next two weeks, in progress, overdue, "
    "emergencies with post-approval overdue; 20 a page\n"
    "• `/change emergency [incident]`: declare an emergency change (fix first, post-approve later)\n"
    "• `/change calendar [today|week|2026-12-01]`: the change calendar\n"
    "• `/change freeze start [reason]` / `/change freeze end`: an ad-hoc change freeze\n"
    "• `/change incident CR-2026-0001 INC-123`: record that a change caused an incident\n"
    "• `/change report [week|month|2026-10]`: success, rollback and failure rates with a chart\n"
    "• `/change reschedule CR-2026-0001`: move a change's window\n"
    "• `/change cancel CR-2026-0001 [reason]`: cancel a change that has not started\n"
    "• `/change help`: this help"
)


def help_blocks(prefix: str | None = None) -> list[dict[str, Any]]:
    blocks: list[Block] = []
    if prefix:
        blocks.append(SectionBlock(text=prefix))
    blocks.append(SectionBlock(text=HELP_TEXT))
    return _blocks(blocks)
