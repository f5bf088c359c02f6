"""What several views draw alike: Slack's section limit, the validated dump, a change's
list line, the decision buttons, lines split over sections, a blackout's line and the
frame of a modal with its text inputs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InputBlock,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from domain.calendar_policy import BlackoutHit
from domain.model import Change
from modals.ids import ActionId, CallbackId, Field
from modals.labels import STATUS_LABELS
from modals.text import Mrkdwn, clip_md, escaped_clip, join_md, md, section, slack_date

SECTION_LIMIT = 3000  # Slack refuses a section whose text is longer


def dump(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    """to_dict() runs slack_sdk's validators: lengths and counts fail here, not in Slack."""
    return [block.to_dict() for block in blocks]


def titled_lines(heading: str, lines: Iterable[str]) -> Mrkdwn:
    """A bold heading over its lines, clipped to what one section holds."""
    return clip_md(md("*{}*\n{}", heading, join_md("\n", lines)), SECTION_LIMIT)


def change_line(change: Change, zone: ZoneInfo) -> Mrkdwn:
    """One change in a list: id, title, status, risk and start."""
    return md(
        "*{}* {} · {} · {} risk · {}",
        change.id,
        escaped_clip(change.draft.title, 80),
        STATUS_LABELS[change.status],
        change.risk.value,
        slack_date(change.draft.starts_at, zone),
    )


def line_sections(lines: Iterable[Mrkdwn], *, room: int) -> list[SectionBlock]:
    """Whole lines in as few sections as hold them, each at most `room` characters."""
    blocks: list[SectionBlock] = []
    chunk: list[Mrkdwn] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > room:
            blocks.append(section(join_md("\n", chunk)))
            chunk = []
        chunk.append(line)
    blocks.append(section(join_md("\n", chunk)))
    return blocks


def decision_buttons(
    change: Change,
    *,
    prefix: str,
    approve_text: str = "Approve",
    approve: ActionId = ActionId.APPROVE,
    reject: ActionId = ActionId.REJECT,
    request_changes: ActionId | None = None,
) -> ActionsBlock:
    """The green and the red button under a change that waits for a decision, and
    between them, when asked for, the approver's third answer: request changes."""
    middle = (
        [ButtonElement(text="Request changes", action_id=request_changes.value, value=change.id)]
        if request_changes is not None
        else []
    )
    return ActionsBlock(
        block_id=f"{prefix}:{change.id}",
        elements=[
            ButtonElement(text=approve_text, action_id=approve.value, value=change.id, style="primary"),
            *middle,
            ButtonElement(text="Reject", action_id=reject.value, value=change.id, style="danger"),
        ],
    )


def blackout_line(blackout: BlackoutHit, zone: ZoneInfo, *, name_limit: int) -> Mrkdwn:
    return md(
        ":no_entry_sign: {}: {} → {}",
        escaped_clip(blackout.name, name_limit),
        slack_date(blackout.start, zone),
        slack_date(blackout.end, zone),
    )


def change_heading(change: Change) -> SectionBlock:
    """The first line of a modal about one change: its id and title."""
    return section(md("*{}* {}", change.id, escaped_clip(change.draft.title, 200)))


def long_text_input(field: Field, label: str, *, max_length: int) -> InputBlock:
    """A multi-line answer to one question; the field names both the block and the input."""
    return InputBlock(
        block_id=field.value,
        label=label,
        element=PlainTextInputElement(action_id=field.value, multiline=True, max_length=max_length),
    )


def modal(
    callback_id: CallbackId, *, title: str, submit: str, metadata: BaseModel, blocks: Sequence[Block]
) -> dict[str, Any]:
    """A modal with a Cancel button; `metadata` comes back as JSON with the submission."""
    return View(
        type="modal",
        callback_id=callback_id.value,
        title=title,
        submit=submit,
        close="Cancel",
        private_metadata=metadata.model_dump_json(),
        blocks=list(blocks),
    ).to_dict()
