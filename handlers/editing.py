"""Correcting a change: the Edit button and `/change edit` open the filled-in form, its
submission saves the edit; an approver's Request changes asks for a comment and sends it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.editing import form_of
from domain.errors import ChangeNotFound, ConflictsFound, DecisionConflict
from domain.intake import IntakeRejected
from domain.quorum import REFUSAL_TEXT
from handlers.approvals import refused
from handlers.common import FormErrors, answer_form, clicked, tell
from handlers.context import AppContext
from modals.cards import parse_reason
from modals.editing import request_changes_modal
from modals.ids import ActionId, CallbackId, Field
from modals.intake import edit_change_modal, inline_errors, parse_change_form
from modals.metadata import EditMetadata, RejectMetadata
from modals.text import Mrkdwn, escaped_clip, md

COMMENT_FORM = FormErrors(
    Field.REASON.value,
    refused="Not sent: {}.",
    stale="This form is out of date: click Request changes on the card again.",
)


async def edit_form(ctx: AppContext, *, change_id: str, user: str, trigger_id: str) -> Mrkdwn | None:
    """Open the edit form for `user`, or say in one line why they may not edit it."""
    try:
        outcome = await ctx.service.check_edit(change_id=change_id, user=user)
    except ChangeNotFound:
        return md("There is no change {}.", escaped_clip(change_id, 30))
    if outcome.refusal:
        return md("Not editable: {}.", escaped_clip(outcome.refusal, 300))
    change = outcome.change
    view = edit_change_modal(ctx.policy, change_id=change.id, form=form_of(change), now=ctx.clock.now())
    await ctx.gateway.open_view(trigger_id=trigger_id, view=view)
    return None


async def save_edit(ctx: AppContext, body: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """The edit form's answer to Slack: {} closes it; errors inline; an overlap warning."""
    form = parse_change_form(view)
    try:
        meta = EditMetadata.model_validate_json(view.get("private_metadata") or "{}")
        outcome = await ctx.service.edit_change(
            change_id=meta.change_id, user=str(body["user"]["id"]), form=form
        )
    except IntakeRejected as exc:
        return {"response_action": "errors", "errors": inline_errors(exc.errors, view)}
    except ConflictsFound as exc:  # same blocks and ids: a second Save confirms
        warning = edit_change_modal(
            ctx.policy, change_id=meta.change_id, form=form, now=ctx.clock.now(), conflicts=exc.conflicts
        )
        return {"response_action": "update", "view": warning}
    except ValidationError:
        return _title_error("This form is out of date: click Edit on the card again.")
    except (ChangeNotFound, DecisionConflict) as exc:
        return _title_error(f"Not saved: {exc}")
    if outcome.refusal:
        return _title_error(f"Not saved: {outcome.refusal}.")
    return {}


def _title_error(text: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {Field.TITLE.value: text[:2000]}}


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.action(ActionId.EDIT.value)
    async def edit(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        refusal = await edit_form(
            ctx, change_id=click.change_id, user=click.user, trigger_id=click.trigger_id
        )
        await tell(ctx, click, refusal)

    @app.view(CallbackId.EDIT_CHANGE.value)
    async def edit_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack(**await save_edit(ctx, body, view))

    @app.action(ActionId.REQUEST_CHANGES.value)
    async def request_changes(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            refusal = await ctx.service.check_decision(change_id=click.change_id, user=click.user)
            if refusal is not None:
                return await tell(ctx, click, refused(refusal))
            change = await ctx.service.get_change(change_id=click.change_id)
        except ChangeNotFound:
            return await tell(ctx, click, md("{} does not exist.", click.change_id))
        metadata = RejectMetadata(change_id=change.id, channel=click.channel)
        await ctx.gateway.open_view(trigger_id=click.trigger_id, view=request_changes_modal(change, metadata))

    @app.view(CallbackId.REQUEST_CHANGES.value)
    async def changes_comment(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        async def submit() -> str | None:
            meta = RejectMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.request_changes(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                comment=parse_reason(view),
                team_id=(body.get("team") or {}).get("id"),
            )
            return None if outcome.refusal is None else REFUSAL_TEXT[outcome.refusal]

        await answer_form(ack, COMMENT_FORM, submit)
