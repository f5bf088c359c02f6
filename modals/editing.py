"""What correcting a change looks like: the Edit button, the request-changes modal, the
card's lines for an edit and a request for changes, and the messages both cause."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from domain.editing import EDITABLE
from domain.enums import Category, Status
from domain.limits import MAX_REASON
from domain.messages import ChangesRequested, Edited
from domain.model import AuditAction, Change
from modals.blocks import change_heading, dump, long_text_input, modal
from modals.ids import ActionId, CallbackId, Field
from modals.metadata import RejectMetadata
from modals.text import Mrkdwn, escaped_clip, join_md, md, mention, role_label, section

EDIT_LINES = 8  # the changed fields a card or a message lists; the audit keeps them all


def editable(change: Change) -> bool:
    """Whether the card offers Edit (the click is still authorised when it comes)."""
    return change.status in EDITABLE and change.draft.category is not Category.EMERGENCY


def edit_actions(change: Change) -> ActionsBlock:
    """The requester's Edit button (a rejected or sent-back change: edit and resubmit)."""
    text = "Edit and resubmit" if change.status in (Status.REJECTED, Status.CHANGES_REQUESTED) else "Edit"
    return ActionsBlock(
        block_id=f"edit:{change.id}",
        elements=[ButtonElement(text=text, action_id=ActionId.EDIT.value, value=change.id)],
    )


def _changed(lines: list[str] | tuple[str, ...]) -> Mrkdwn:
    shown = [escaped_clip(str(line), 300) for line in lines[:EDIT_LINES]]
    more = md(" (and {} more)", str(len(lines) - EDIT_LINES)) if len(lines) > EDIT_LINES else Mrkdwn("")
    return md("{}{}", join_md("; ", shown), more)


def correction_lines(change: Change) -> list[Mrkdwn]:
    """The card's word on corrections: the comment while changes are requested, and what
    the last edit changed."""
    lines: list[Mrkdwn] = []
    asked = [e for e in change.audit if e.action is AuditAction.CHANGES_REQUESTED]
    if change.status is Status.CHANGES_REQUESTED and asked:
        entry = asked[-1]
        lines.append(
            md(
                ":memo: Changes requested by {}: {}",
                mention(entry.actor),
                escaped_clip(str(entry.details.get("comment", "")), MAX_REASON),
            )
        )
    edits = [e for e in change.audit if e.action is AuditAction.EDITED]
    if edits and edits[-1].details.get("changes"):
        entry = edits[-1]
        lines.append(
            md(":pencil2: Edited by {}: {}", mention(entry.actor), _changed(entry.details["changes"]))
        )
    return lines


def request_changes_modal(change: Change, metadata: RejectMetadata) -> dict[str, Any]:
    return modal(
        CallbackId.REQUEST_CHANGES,
        title="Request changes",
        submit="Send",
        metadata=metadata,
        blocks=[
            change_heading(change),
            long_text_input(Field.REASON, "What should change before you approve it?", max_length=MAX_REASON),
        ],
    )


def changes_requested_message(
    change: Change, message: ChangesRequested
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    """To the requester (and the card's thread): who asks what, and the Edit button; to the
    implementer, the same words without it (the requester edits)."""
    text = md(
        ":memo: {} asks for changes to *{}* {} before approving it as {}: {}",
        mention(message.by),
        change.id,
        escaped_clip(change.draft.title, 150),
        role_label(message.role),
        escaped_clip(message.comment, MAX_REASON),
    )
    if message.implementer:
        text = md("{} You implement it; {} edits it.", text, mention(change.requester))
    blocks: list[Block] = [section(text)]
    if not message.thread and not message.implementer and editable(change):
        blocks.append(edit_actions(change))
    return text, dump(blocks)


def edited_message(change: Change, message: Edited) -> Mrkdwn:
    """To the approvers and the card's thread: what the edit changed, and what it means."""
    verb = "edited and resubmitted" if message.resubmitted else "edited"
    text = md("{} {} *{}* {}", mention(message.by), verb, change.id, escaped_clip(change.draft.title, 150))
    text = md("{}: {}.", text, _changed(message.changes)) if message.changes else md("{}.", text)
    if message.reapproval:
        return md("{} It waits for approval again.", text)
    return text
