"""The emergency declaration form, the post-approval chase messages and the on-call
announcement. Pure builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    InputBlock,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)

from domain.emergency import ON_CALL_ROLE, POST_DEADLINE, EmergencyForm, on_call_users
from domain.enums import Decision, Status
from domain.limits import MAX_INCIDENT, MAX_REASON
from domain.messages import OnCallFound, PostChase, PostDecided
from domain.model import AuditAction, Change, PostState
from domain.policy import Policy
from modals.blocks import SECTION_LIMIT, decision_buttons, dump, modal
from modals.ids import ActionId, CallbackId
from modals.text import (
    Mrkdwn,
    clip,
    clip_md,
    escaped_clip,
    join_md,
    md,
    mention,
    role_label,
    section,
    slack_date,
)

POST_STATE_LABELS = {
    PostState.PENDING: ":hourglass_flowing_sand: post-approval pending",
    PostState.APPROVED: ":white_check_mark: post-approved",
    PostState.REJECTED: ":no_entry: post-approval refused",
    PostState.OVERDUE: ":rotating_light: post-approval OVERDUE",
    PostState.NOT_NEEDED: "post-approval not needed",
}


class EmergencyMetadata(BaseModel):
    """Where the declaration came from, carried through the modal."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source_link: str | None = None
    channel: str | None = None


def message_permalink(*, team_domain: str | None, channel: str, message_ts: str) -> str | None:
    """Slack's permalink format; building it avoids a Web API round trip inside the 3 s window."""
    if not team_domain or not channel or not message_ts:
        return None
    return f"https://{team_domain}.slack.com/archives/{channel}/p{message_ts.replace('.', '')}"


def _intro(policy: Policy) -> SectionBlock:
    hours = str(int(policy.emergency.post_approval.within.total_seconds() // 3600))
    return section(
        md(
            ":rotating_light: *Fix first, document now.* The on-call is told, and a manager "
            "post-approves within {} h.",
            hours,
        )
    )


def emergency_modal(
    policy: Policy,
    *,
    incident: str | None = None,
    broken: str | None = None,
    metadata: EmergencyMetadata | None = None,
) -> dict[str, Any]:
    text_limit = policy.limits.text

    def text(
        block: str,
        label: str,
        *,
        multiline: bool,
        optional: bool = False,
        initial: str | None = None,
        max_length: int = text_limit,
        hint: str | None = None,
    ) -> InputBlock:
        return InputBlock(
            block_id=block,
            label=label,
            optional=optional,
            hint=hint,
            element=PlainTextInputElement(
                action_id=block,
                multiline=multiline,
                max_length=max_length,
                initial_value=clip(initial, max_length) if initial else None,
            ),
        )

    blocks: list[Block] = [
        _intro(policy),
        text("title", "Title", multiline=False, max_length=policy.limits.title),
        InputBlock(
            block_id="severity",
            label="Severity",
            element=StaticSelectElement(
                action_id="severity",
                placeholder="Choose the severity",
                options=[Option(value=s, label=s) for s in policy.emergency.severities],
                initial_option=Option(
                    value=policy.emergency.severities[0], label=policy.emergency.severities[0]
                ),
            ),
        ),
        InputBlock(
            block_id="services",
            label="Affected services",
            element=StaticMultiSelectElement(
                action_id="services",
                placeholder="Pick services",
                options=[Option(value=s, label=clip(s, 75)) for s in policy.services],
            ),
        ),
        text("broken", "What is broken", multiline=True, initial=broken),
        text("fix", "The fix", multiline=True, hint="What you change to restore service."),
        text("rollback", "Rollback", multiline=True, optional=True, hint="If this does not work, what next?"),
        text(
            "incident",
            "Incident id or link",
            multiline=False,
            optional=True,
            initial=incident,
            max_length=MAX_INCIDENT,
        ),
    ]
    return modal(
        CallbackId.EMERGENCY,
        title="Emergency change",
        submit="Declare",
        metadata=metadata or EmergencyMetadata(),
        blocks=blocks,
    )


def parse_emergency_form(view: dict[str, Any]) -> EmergencyForm:
    state = (view.get("state") or {}).get("values") or {}

    def value(block: str) -> dict[str, Any]:
        found = (state.get(block) or {}).get(block)
        return found if isinstance(found, dict) else {}

    def text(block: str) -> str | None:
        raw = value(block).get("value")
        return raw if isinstance(raw, str) else None

    severity = (value("severity").get("selected_option") or {}).get("value")
    services = [
        str(o.get("value")) for o in value("services").get("selected_options") or [] if isinstance(o, dict)
    ]
    return EmergencyForm(
        title=text("title"),
        services=services,
        broken=text("broken"),
        fix=text("fix"),
        rollback=text("rollback"),
        incident=text("incident"),
        severity=severity if isinstance(severity, str) else None,
    )


def post_actions(change: Change) -> ActionsBlock:
    return decision_buttons(
        change,
        prefix="post",
        approve_text="Post-approve",
        approve=ActionId.POST_APPROVE,
        reject=ActionId.POST_REJECT,
    )


def acknowledged_by(change: Change) -> list[str]:
    """The on-call engineers who acknowledged the emergency, in order."""
    return list(dict.fromkeys(e.actor for e in change.audit if e.action is AuditAction.ON_CALL_ACKNOWLEDGED))


@dataclass(frozen=True)
class DmReader:
    """Who reads an emergency's DM copy of the card, and what they may still decide."""

    user: str
    decides: bool = False  # an open approval step (the on-call's: the go-ahead) is theirs
    post_decides: bool = False  # they may still post-approve


def emergency_dm_actions(change: Change, reader: DmReader | None) -> list[Block]:
    """An emergency's DM copy carries only the buttons its reader may use: the on-call
    their go-ahead (or, when none is asked of them, Acknowledge), the approvers their step,
    the post-approvers the post-approval."""
    if reader is None:
        return []
    on_call = reader.user in on_call_users(change)
    blocks: list[Block] = []
    if reader.decides and change.status is Status.PENDING_APPROVAL:
        go_ahead = on_call and any(step.role == ON_CALL_ROLE for step in change.steps)
        blocks.append(
            decision_buttons(change, prefix="decide", approve_text="Go ahead" if go_ahead else "Approve")
        )
    elif on_call and _may_acknowledge(change, reader.user):
        button = ButtonElement(
            text="Acknowledge", action_id=ActionId.ACKNOWLEDGE.value, value=change.id, style="primary"
        )
        blocks.append(ActionsBlock(block_id=f"acknowledge:{change.id}", elements=[button]))
    if reader.post_decides and change.post_approval_open:
        blocks.append(post_actions(change))
    return blocks


def _may_acknowledge(change: Change, user: str) -> bool:
    """No go-ahead is asked of the on-call, the emergency is on, and they have not yet."""
    return (
        not any(step.role == ON_CALL_ROLE for step in change.steps)
        and change.status in ACKNOWLEDGEABLE
        and user not in acknowledged_by(change)
    )


ACKNOWLEDGEABLE = frozenset({Status.APPROVED, Status.IN_PROGRESS})


def post_lines(change: Change, zone: Any) -> list[Mrkdwn]:
    if change.post_state is None:
        return []
    due = (
        md(" by {}", slack_date(change.post_due_at, zone))
        if change.post_due_at and change.post_approval_open
        else ""
    )
    lines = [md("{}{}", POST_STATE_LABELS[change.post_state], due)]
    for step in change.post_steps:
        lines.append(md("{} ×{}", role_label(step.role), str(step.count)))
    for entry in change.post_approvals:
        verb = "post-approved" if entry.decision is Decision.APPROVE else "refused"
        reason = md(": {}", escaped_clip(entry.reason, 300)) if entry.reason else ""
        lines.append(md("{} {}{}", mention(entry.user), verb, reason))
    return lines


def on_call_text(change: Change, message: OnCallFound) -> Mrkdwn:
    users = join_md(", ", [mention(u) for u in message.users]) or Mrkdwn("nobody")
    go_ahead = change.steps and change.steps[0].role == "on_call"
    ask = (
        " Your go-ahead is needed before the change starts: see your DM."
        if go_ahead
        else " No go-ahead needed: acknowledge it on your card."
    )
    text = md(":pager: On call for *{}*: {}.{}", change.id, users, ask)
    if message.source == "fallback":
        reason = escaped_clip(str(message.reason), 300)
        text = md("{}\n:warning: Sent to the fallback responders because {}.", text, reason)
    return text


def post_chase_message(change: Change, message: PostChase, zone: Any) -> tuple[Mrkdwn, list[dict[str, Any]]]:
    deadline = message.key == POST_DEADLINE
    title = md("*{}* {}", change.id, escaped_clip(change.draft.title, 150))
    if deadline:
        text = md(
            ":rotating_light: Post-approval OVERDUE for emergency {}: it was due {}.",
            title,
            slack_date(message.due_at, zone),
        )
    else:
        due = slack_date(change.post_due_at, zone) if change.post_due_at else "soon"
        text = md(":hourglass_flowing_sand: Reminder: emergency {} needs post-approval by {}.", title, due)
    blocks: list[Block] = [section(clip_md(text, SECTION_LIMIT))]
    if change.post_approval_open:
        blocks.append(post_actions(change))
    return clip_md(text, 300), dump(blocks)


def post_decided_message(change: Change, message: PostDecided) -> Mrkdwn:
    verb = "post-approved" if message.decision is Decision.APPROVE else "refused post-approval of"
    title = escaped_clip(change.draft.title, 150)
    text = md("{} {} emergency *{}* {}.", mention(message.by), verb, change.id, title)
    if message.reason:
        text = md("{} Reason: {}", text, escaped_clip(message.reason, MAX_REASON))
    return text


def review_requested_message(change: Change) -> Mrkdwn:
    return md(
        ":memo: Post-approval of emergency *{}* {} was refused. "
        "A post-incident review is required: record what happened, why, and what changes now.",
        change.id,
        escaped_clip(change.draft.title, 150),
    )
