"""The reschedule modal's submission: same window rules as the form, errors inline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from handlers.common import FormErrors, answer_form
from handlers.context import AppContext
from modals.ids import CallbackId, Field
from modals.metadata import RescheduleMetadata
from modals.timeline import field_value

RESCHEDULE_FORM = FormErrors(
    Field.STARTS_AT.value,
    refused="Not moved: {}.",
    stale="This form is out of date: run `/change reschedule` again.",
)


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.view(CallbackId.RESCHEDULE.value)
    async def reschedule_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        async def submit() -> str | None:
            meta = RescheduleMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.reschedule(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                starts_at=field_value(view, Field.STARTS_AT, "selected_date_time"),
                ends_at=field_value(view, Field.ENDS_AT, "selected_date_time"),
            )
            return outcome.refusal

        await answer_form(ack, RESCHEDULE_FORM, submit)
