"""Writing a post-implementation review: the button and the form."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ChangeNotFound
from handlers.common import FormErrors, answer_form, clicked, tell
from handlers.context import AppContext
from modals.ids import ActionId, CallbackId
from modals.review import ReviewMetadata, parse_review, review_modal
from modals.text import md

REVIEW_FORM = FormErrors(
    "result",
    refused="Not saved: {}.",
    stale="This form is out of date: use the button on the change again.",
    stale_on=(ValidationError, ChangeNotFound),
    lost_on=(),
)


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.action(ActionId.REVIEW.value)
    async def open_review(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            change = await ctx.service.get_change(change_id=click.change_id)
        except ChangeNotFound as exc:
            return await tell(ctx, click, md("{}.", str(exc)))
        view = review_modal(change, ctx.policy.review.checklist)
        await ctx.gateway.open_view(trigger_id=click.trigger_id, view=view)

    @app.view(CallbackId.REVIEW.value)
    async def review_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        async def submit() -> str | None:
            meta = ReviewMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.submit_review(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                answers=parse_review(view, ctx.policy.review.checklist),
            )
            return outcome.refusal

        await answer_form(ack, REVIEW_FORM, submit)
