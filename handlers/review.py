"""Writing a post-implementation review: the button and the form."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ChangeNotFound
from domain.intake import IntakeRejected
from handlers.approvals import clicked
from handlers.context import AppContext
from modals.ids import ActionId, CallbackId
from modals.review import ReviewMetadata, parse_review, review_modal
from modals.text import md


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.action(ActionId.REVIEW.value)
    async def open_review(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        change_id, user, channel, _team = clicked(body)
        try:
            change = await ctx.service.get_change(change_id=change_id)
        except ChangeNotFound as exc:
            await ctx.gateway.ephemeral(channel=channel, user=user, text=md("{}.", str(exc)))
            return
        view = review_modal(change, ctx.policy.review.checklist)
        await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)

    @app.view(CallbackId.REVIEW.value)
    async def review_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors: dict[str, str] | None = None
        try:
            meta = ReviewMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.submit_review(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                answers=parse_review(view, ctx.policy.review.checklist),
            )
            if outcome.refusal:
                errors = {"result": f"Not saved: {outcome.refusal}."}
        except IntakeRejected as exc:
            errors = exc.errors
        except (ValidationError, ChangeNotFound):
            errors = {"result": "This form is out of date: use the button on the change again."}
        await (ack(response_action="errors", errors=errors) if errors else ack())
