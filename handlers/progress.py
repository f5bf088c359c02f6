"""Implementation tracking: Start / Completed / Failed / Rolled back / Close, and the
notes modal for failures and rollbacks."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from domain.read_models import ProgressAction
from domain.usecases.progress import NOTES_REQUIRED
from handlers.approvals import clicked
from handlers.context import AppContext
from modals.ids import ActionId, CallbackId, Field
from modals.metadata import ProgressMetadata
from modals.text import md, with_mentions
from modals.timeline import field_value, notes_modal

BUTTONS = {
    ActionId.START: ProgressAction.START,
    ActionId.COMPLETE: ProgressAction.COMPLETE,
    ActionId.FAIL: ProgressAction.FAIL,
    ActionId.ROLLBACK: ProgressAction.ROLLBACK,
    ActionId.CLOSE: ProgressAction.CLOSE,
}


def register(app: AsyncApp, ctx: AppContext) -> None:
    async def on_progress(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        change_id, user, channel, team = clicked(body)
        step = BUTTONS[ActionId(action["action_id"])]
        try:
            if step in NOTES_REQUIRED:
                view = notes_modal(
                    await ctx.service.get_change(change_id=change_id),
                    ProgressMetadata(change_id=change_id, action=step.value, channel=channel),
                )
                await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)
                return
            outcome = await ctx.service.record_progress(
                change_id=change_id, user=user, action=step, team_id=team
            )
            text = md("Not done: {}.", with_mentions(outcome.refusal)) if outcome.refusal else None
        except (ChangeNotFound, DecisionConflict) as exc:
            text = md("Not done: {}.", str(exc))
        if text:
            await ctx.gateway.ephemeral(channel=channel, user=user, text=text)

    for action_id in BUTTONS:
        app.action(action_id.value)(on_progress)

    @app.view(CallbackId.PROGRESS_NOTES.value)
    async def notes_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors: dict[str, str] | None = None
        try:
            meta = ProgressMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.record_progress(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                action=ProgressAction(meta.action),
                notes=str(field_value(view, Field.NOTES, "value") or ""),
                team_id=(body.get("team") or {}).get("id"),
            )
            if outcome.refusal:
                errors = {Field.NOTES.value: f"Not done: {outcome.refusal}."}
        except IntakeRejected as exc:
            errors = exc.errors
        except (ValidationError, ValueError):
            errors = {Field.NOTES.value: "This form is out of date: use the buttons on the change again."}
        except (ChangeNotFound, DecisionConflict) as exc:
            errors = {Field.NOTES.value: f"Not done: {exc}."}
        await (ack(response_action="errors", errors=errors) if errors else ack())
