"""Declaring emergencies (`/change emergency`, the message shortcut) and post-approval."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.emergency import required_declaration_channel
from domain.enums import Decision
from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from handlers.approvals import open_reject, refused
from handlers.common import clicked, tell
from handlers.context import AppContext
from modals.emergency import EmergencyMetadata, emergency_modal, message_permalink, parse_emergency_form
from modals.ids import ActionId, CallbackId
from modals.intake import new_change_modal
from modals.text import md


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.shortcut(CallbackId.DECLARE_EMERGENCY_SHORTCUT.value)
    async def declare_from_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id"))
        required = required_declaration_channel(ctx.policy, channel=channel)
        if required:
            text = md("Declare emergencies from a message in <#{}>.", required)
            await ctx.gateway.ephemeral(channel=channel, user=user, text=text)
            return
        message = body.get("message") or {}
        link = message_permalink(
            team_domain=(body.get("team") or {}).get("domain"),
            channel=channel,
            message_ts=str(message.get("ts") or ""),
        )
        view = emergency_modal(
            ctx.policy,
            incident=link,
            broken=str(message.get("text") or "") or None,
            metadata=EmergencyMetadata(source_link=link, channel=channel),
        )
        await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)

    @app.shortcut(CallbackId.NEW_CHANGE_SHORTCUT.value)
    async def new_from_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        view = new_change_modal(ctx.policy, now=ctx.clock.now())
        await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)

    @app.view(CallbackId.EMERGENCY.value)
    async def declared(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            meta = EmergencyMetadata.model_validate_json(view.get("private_metadata") or "{}")
        except ValidationError:
            meta = EmergencyMetadata()
        try:
            await ctx.service.declare_emergency(
                form=parse_emergency_form(view),
                requester=str(body["user"]["id"]),
                team_id=(body.get("team") or {}).get("id"),
                source_link=meta.source_link,
            )
        except IntakeRejected as exc:
            await ack(response_action="errors", errors=exc.errors)
            return
        await ack()

    register_decisions(app, ctx)


def register_decisions(app: AsyncApp, ctx: AppContext) -> None:
    """The buttons on an emergency: post-approval, and the on-call's acknowledgement."""

    @app.action(ActionId.POST_APPROVE.value)
    async def post_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            outcome = await ctx.service.post_decide(
                change_id=click.change_id, user=click.user, decision=Decision.APPROVE, team_id=click.team
            )
            text = refused(outcome.refusal)
        except (ChangeNotFound, DecisionConflict) as exc:
            text = md("Not recorded: {}.", str(exc))
        await tell(ctx, click, text)

    @app.action(ActionId.ACKNOWLEDGE.value)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            outcome = await ctx.service.acknowledge(
                change_id=click.change_id, user=click.user, team_id=click.team
            )
            text = md("Not recorded: {}.", outcome.refusal) if outcome.refusal else None
        except (ChangeNotFound, DecisionConflict) as exc:
            text = md("Not recorded: {}.", str(exc))
        await tell(ctx, click, text)

    @app.action(ActionId.POST_REJECT.value)
    async def post_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            refusal = await ctx.service.check_post_decision(change_id=click.change_id, user=click.user)
            if refusal is None:
                return await open_reject(ctx, click, phase="post")
            text = refused(refusal)
        except ChangeNotFound as exc:
            text = md("Not recorded: {}.", str(exc))
        await tell(ctx, click, text)
