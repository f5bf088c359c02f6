"""Implementation tracking: Start / Completed / Failed / Rolled back / Close, and the
notes modal for failures and rollbacks."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ChangeNotFound, DecisionConflict
from domain.read_models import ProgressAction
from domain.usecases.progress import NOTES_REQUIRED
from handlers.common import FormErrors, answer_form, clicked, tell
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
NOTES_FORM = FormErrors(
    Field.NOTES.value,
    refused="Not done: {}.",
    stale="This form is out of date: use the buttons on the change again.",
    stale_on=(ValidationError, ValueError),  # ValueError: an action no button has
)


def register(app: AsyncApp, ctx: AppContext) -> None:
    async def on_progress(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        step = BUTTONS[ActionId(action["action_id"])]
        try:
            if step in NOTES_REQUIRED:
                view = notes_modal(
                    await ctx.service.get_change(change_id=click.change_id),
                    ProgressMetadata(change_id=click.change_id, action=step.value, channel=click.channel),
                )
                await ctx.gateway.open_view(trigger_id=click.trigger_id, view=view)
                return
            outcome = await ctx.service.record_progress(
                change_id=click.change_id, user=click.user, action=step, team_id=click.team
            )
            text = md("Not done: {}.", with_mentions(outcome.refusal)) if outcome.refusal else None
        except (ChangeNotFound, DecisionConflict) as exc:
            text = md("Not done: {}.", str(exc))
        await tell(ctx, click, text)

    for action_id in BUTTONS:
        app.action(action_id.value)(on_progress)

    @app.view(CallbackId.PROGRESS_NOTES.value)
    async def notes_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        async def submit() -> str | None:
            meta = ProgressMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.record_progress(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                action=ProgressAction(meta.action),
                notes=str(field_value(view, Field.NOTES, "value") or ""),
                team_id=(body.get("team") or {}).get("id"),
            )
            return outcome.refusal

        await answer_form(ack, NOTES_FORM, submit)
