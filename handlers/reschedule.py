"""The reschedule modal's submission: same window rules as the form, errors inline."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from handlers.context import AppContext
from modals.ids import CallbackId, Field
from modals.metadata import RescheduleMetadata
from modals.timeline import field_value


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.view(CallbackId.RESCHEDULE.value)
    async def reschedule_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors: dict[str, str] | None = None
        try:
            meta = RescheduleMetadata.model_validate_json(view.get("private_metadata") or "{}")
            outcome = await ctx.service.reschedule(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                starts_at=field_value(view, Field.STARTS_AT, "selected_date_time"),
                ends_at=field_value(view, Field.ENDS_AT, "selected_date_time"),
            )
            if outcome.refusal:
                errors = {Field.STARTS_AT.value: f"Not moved: {outcome.refusal}."}
        except IntakeRejected as exc:
            errors = exc.errors
        except ValidationError:
            errors = {Field.STARTS_AT.value: "This form is out of date: run `/change reschedule` again."}
        except (ChangeNotFound, DecisionConflict) as exc:
            errors = {Field.STARTS_AT.value: f"Not moved: {exc}."}
        await (ack(response_action="errors", errors=errors) if errors else ack())
