"""Approve / Reject buttons and the reject-reason modal."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.enums import Decision
from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from domain.quorum import REFUSAL_TEXT
from handlers.context import AppContext
from modals.cards import parse_reason, reject_modal
from modals.ids import ActionId, CallbackId, Field
from modals.metadata import RejectMetadata
from modals.text import Mrkdwn, md


def clicked(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(change id, user, channel, team) of a button click."""
    action = (body.get("actions") or [{}])[0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return (
        str(action.get("value", "")),
        str(body["user"]["id"]),
        str(channel or ""),
        ((body.get("team") or {}).get("id")),
    )


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.action(ActionId.APPROVE.value)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        change_id, user, channel, team = clicked(body)
        try:
            outcome = await ctx.service.decide(
                change_id=change_id, user=user, decision=Decision.APPROVE, team_id=team
            )
            text = None if outcome.accepted else md("Not recorded: {}.", REFUSAL_TEXT[outcome.refusal])  # type: ignore[index]
        except ChangeNotFound:
            text = md("{} does not exist.", change_id)
        except DecisionConflict:
            text = Mrkdwn("Others were deciding at the same moment. Please click again.")
        if text:
            await ctx.gateway.ephemeral(channel=channel, user=user, text=text)

    @app.action(ActionId.REJECT.value)
    async def reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        change_id, user, channel, _team = clicked(body)
        try:
            refusal = await ctx.service.check_decision(change_id=change_id, user=user)
        except ChangeNotFound:
            return await ctx.gateway.ephemeral(
                channel=channel, user=user, text=md("{} does not exist.", change_id)
            )
        if refusal is not None:
            return await ctx.gateway.ephemeral(
                channel=channel, user=user, text=md("Not recorded: {}.", REFUSAL_TEXT[refusal])
            )
        change = await ctx.service.get_change(change_id=change_id)
        view = reject_modal(change, RejectMetadata(change_id=change.id, channel=channel))
        await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)

    @app.view(CallbackId.REJECT_REASON.value)
    async def reject_reason(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        errors: dict[str, str] | None = None
        try:
            meta = RejectMetadata.model_validate_json(view.get("private_metadata") or "{}")
            decide = ctx.service.post_decide if meta.phase == "post" else ctx.service.decide
            outcome = await decide(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                decision=Decision.REJECT,
                reason=parse_reason(view),
                team_id=(body.get("team") or {}).get("id"),
            )
            if outcome.refusal is not None:
                errors = {Field.REASON.value: f"Not recorded: {REFUSAL_TEXT[outcome.refusal]}."}
        except IntakeRejected as exc:
            errors = exc.errors
        except ValidationError:
            errors = {Field.REASON.value: "This form is out of date: click Reject on the card again."}
        except (ChangeNotFound, DecisionConflict) as exc:
            errors = {Field.REASON.value: f"Not recorded: {exc}"}
        if errors:
            await ack(response_action="errors", errors=errors)
        else:
            await ack()
