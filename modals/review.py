"""Post-implementation reviews (seed 003's template), incidents caused, the CAB agenda."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    HeaderBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)

from domain.limits import MAX_ANSWER
from domain.listing import Counted
from domain.messages import IncidentLinked, ReviewChase, ReviewDone
from domain.model import Change
from domain.read_models import CabAgenda
from domain.timeline import REVIEW_DEADLINE
from modals.blocks import decision_buttons, dump, modal, titled_lines
from modals.counts import ICS_FEED, list_command, more_line, total_label
from modals.ids import ActionId, CallbackId
from modals.labels import STATUS_LABELS
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

CAB_BUTTONS = 15  # changes awaiting approval shown with their buttons
CAB_LINES = 20  # changes shown in each other agenda item

RESULTS = ("Successful", "Successful with issues", "Failed", "Rolled back")
QUESTIONS = (
    ("deviations", "Deviations from the plan"),
    ("issues", "Issues and how they were resolved"),
    ("went_well", "What went well"),
    ("improve", "What to improve"),
    ("action_items", "Action items (owner, due date)"),
)


class ReviewMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    change_id: str = Field(pattern=r"^CR-\d{4}-\d{4,}$")


def review_button(change: Change) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"review:{change.id}",
        elements=[
            ButtonElement(
                text="Write the review", action_id=ActionId.REVIEW.value, value=change.id, style="primary"
            ),
        ],
    )


def review_request_message(change: Change, zone: ZoneInfo) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    review = change.review
    due = slack_date(review.due_at, zone) if review else "soon"
    why = md(" ({})", escaped_clip(review.reason, 100)) if review else ""
    text = md(
        ":memo: Please write the post-implementation review of *{}* {}{} by {}.",
        change.id,
        escaped_clip(change.draft.title, 150),
        why,
        due,
    )
    return clip_md(text, 300), dump([section(text), review_button(change)])


def review_chase_message(
    change: Change, message: ReviewChase, zone: ZoneInfo
) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    due = slack_date(change.review.due_at, zone) if change.review else "now"
    if message.key == REVIEW_DEADLINE:
        text = md(
            ":rotating_light: The review of *{}* {} is overdue (it was due {}). {}, please write it.",
            change.id,
            escaped_clip(change.draft.title, 150),
            due,
            mention(change.implementer),
        )
    else:
        text = md(":hourglass_flowing_sand: Reminder: the review of *{}* is due {}.", change.id, due)
    return clip_md(text, 300), dump([section(text), review_button(change)])


def review_done_message(change: Change, message: ReviewDone) -> Mrkdwn:
    return md(
        ":memo: {} wrote the review of *{}*: see `/change show {}`.",
        mention(message.by),
        change.id,
        change.id,
    )


def incident_linked_message(change: Change, message: IncidentLinked) -> Mrkdwn:
    return md(
        ":boom: {} linked *{}* to incident {}: it counts as a change failure.",
        mention(message.by),
        change.id,
        escaped_clip(message.incident, 300),
    )


def review_modal(change: Change, checklist: list[str]) -> dict[str, Any]:
    blocks: list[Block] = [
        section(
            md("*{}* {} · {}", change.id, escaped_clip(change.draft.title, 200), STATUS_LABELS[change.status])
        ),
        InputBlock(
            block_id="result",
            label="Result",
            element=StaticSelectElement(
                action_id="result",
                placeholder="How did it go?",
                options=[Option(value=r, label=r) for r in RESULTS],
            ),
        ),
    ]
    blocks += [
        InputBlock(
            block_id=key,
            label=label,
            optional=key != "issues",
            element=PlainTextInputElement(action_id=key, multiline=True, max_length=MAX_ANSWER),
        )
        for key, label in QUESTIONS
    ]
    if checklist:
        blocks.append(
            InputBlock(
                block_id="checklist",
                label="Validation checklist",
                optional=True,
                element=CheckboxesElement(
                    action_id="checklist",
                    options=[
                        Option(value=str(i), label=clip(item, 75)) for i, item in enumerate(checklist[:10])
                    ],
                ),
            )
        )
    return modal(
        CallbackId.REVIEW,
        title="Change review",
        submit="Save",
        metadata=ReviewMetadata(change_id=change.id),
        blocks=blocks,
    )


def parse_review(view: dict[str, Any], checklist: list[str]) -> dict[str, str]:
    state = (view.get("state") or {}).get("values") or {}

    def value(block: str) -> dict[str, Any]:
        found = (state.get(block) or {}).get(block)
        return found if isinstance(found, dict) else {}

    answers = {"result": str((value("result").get("selected_option") or {}).get("value") or "")}
    for key, _label in QUESTIONS:
        answers[key] = str(value(key).get("value") or "").strip()
    ticked = [
        int(o["value"])
        for o in value("checklist").get("selected_options") or []
        if str(o.get("value")).isdigit()
    ]
    if checklist:
        answers["checklist"] = "; ".join(
            f"{'[x]' if i in ticked else '[ ]'} {item}" for i, item in enumerate(checklist)
        )
    return answers


def review_lines(change: Change, zone: ZoneInfo) -> list[Mrkdwn]:
    lines = []
    if change.caused_incident:
        lines.append(md(":boom: Caused incident: {}", escaped_clip(change.caused_incident, 200)))
    review = change.review
    if review is not None:
        if review.done and review.submitted_by and review.submitted_at:
            result = escaped_clip(str((review.answers or {}).get("result", "")), 60)
            by, at = mention(review.submitted_by), slack_date(review.submitted_at, zone)
            lines.append(md(":memo: Review by {} {}: {}", by, at, result))
        else:
            due = slack_date(review.due_at, zone)
            lines.append(md(":memo: Review due {} ({})", due, escaped_clip(review.reason, 80)))
    return lines


def review_detail(change: Change) -> Mrkdwn:
    review = change.review
    if review is None or not review.done:
        return Mrkdwn("")
    answers = review.answers or {}
    parts = [md("*Result:* {}", escaped_clip(str(answers.get("result", "")), 60))]
    parts += [
        md("*{}:* {}", label, escaped_clip(str(answers[key]), 600))
        for key, label in QUESTIONS
        if answers.get(key)
    ]
    if answers.get("checklist"):
        parts.append(md("*Checklist:* {}", escaped_clip(str(answers["checklist"]), 600)))
    return titled_lines("Post-implementation review", parts)


def cab_agenda_blocks(agenda: CabAgenda, *, zone: ZoneInfo) -> list[dict[str, Any]]:
    def line(change: Change) -> Mrkdwn:
        return md(
            "*{}* {} · {} · {} risk · {} · {}",
            change.id,
            escaped_clip(change.draft.title, 80),
            change.draft.category.value,
            change.risk.value,
            slack_date(change.draft.starts_at, zone),
            mention(change.requester),
        )

    blocks: list[Block] = [HeaderBlock(text=f"CAB agenda, {agenda.now.astimezone(zone):%a %d %b %Y}")]
    none = "" if agenda.awaiting else "\nNone."
    blocks.append(section(md("*1. Awaiting approval* ({}){}", total_label(agenda.awaiting), none)))
    for change in agenda.awaiting[:CAB_BUTTONS]:
        blocks.append(section(line(change)))
        blocks.append(decision_buttons(change, prefix="cab-decide"))
    more = more_line(agenda.awaiting, CAB_BUTTONS, list_command("pending"))
    if more:
        blocks.append(context(more))

    def unnamed_reviews(shown: int) -> Mrkdwn:  # no list holds overdue reviews: name them
        return escaped_clip(", ".join(agenda.overdue_review_ids[shown:]), 600)

    items: list[tuple[str, Counted, Callable[[int], Mrkdwn]]] = [
        ("2. High-risk changes in the coming week", agenda.high_risk, lambda _: list_command("upcoming")),
        ("3. Failed or rolled back last week", agenda.ended_badly, lambda _: ICS_FEED),
        ("4. Overdue reviews", agenda.overdue_reviews, unnamed_reviews),
    ]
    for heading, changes, rest in items:
        lines = [md("• {} · {}", line(c), STATUS_LABELS[c.status]) for c in changes[:CAB_LINES]]
        while len("\n".join(lines)) > 2200:  # whole lines only, and room left for the tail
            lines.pop()
        tail = more_line(changes, len(lines), rest(len(lines)))
        text = join_md("\n", lines + ([tail] if tail else [])) or Mrkdwn("None.")
        blocks.append(section(md("*{}* ({})\n{}", heading, total_label(changes), text)))
    return dump(blocks[:100])
