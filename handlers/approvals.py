"""Approve / Reject buttons and the reject-reason modal."""

from __future__ import annotations

from typing import Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncApp

from domain import quorum
from domain.enums import Decision
from domain.errors import ChangeNotFound, DecisionConflict
from domain.quorum import REFUSAL_TEXT
from handlers.common import Click, FormErrors, answer_form, clicked, tell
from handlers.context import AppContext
from modals.cards import parse_reason, reject_modal
from modals.ids import ActionId, CallbackId, Field
from modals.metadata import RejectMetadata
from modals.text import Mrkdwn, md

REASON_FORM = FormErrors(
    Field.REASON.value,
    refused="Not recorded: {}.",
    lost="Not recorded: {}",
    stale="This form is out of date: click Reject on the card again.",
)


def refused(refusal: quorum.Refusal | None) -> Mrkdwn | None:
    """Why a vote was not recorded, in the clicker's words; None when it was."""
    return None if refusal is None else md("Not recorded: {}.", REFUSAL_TEXT[refusal])


async def open_reject(ctx: AppContext, click: Click, *, phase: Literal["pre", "post"]) -> None:
    """The reject-reason modal: a rejection (or a refused post-approval) needs a reason."""
    change = await ctx.service.get_change(change_id=click.change_id)
    metadata = RejectMetadata(change_id=change.id, channel=click.channel, phase=phase)
    await ctx.gateway.open_view(trigger_id=click.trigger_id, view=reject_modal(change, metadata))


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.action(ActionId.APPROVE.value)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            outcome = await ctx.service.decide(
                change_id=click.change_id, user=click.user, decision=Decision.APPROVE, team_id=click.team
            )
            text = refused(outcome.refusal)
        except ChangeNotFound:
            text = md("{} does not exist.", click.change_id)
        except DecisionConflict:
            text = Mrkdwn("Others were deciding at the same moment. Please click again.")
        await tell(ctx, click, text)

    @app.action(ActionId.REJECT.value)
    async def reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        click = clicked(body)
        try:
            refusal = await ctx.service.check_decision(change_id=click.change_id, user=click.user)
        except ChangeNotFound:
            return await tell(ctx, click, md("{} does not exist.", click.change_id))
        if refusal is not None:
            return await tell(ctx, click, refused(refusal))
        await open_reject(ctx, click, phase="pre")

    @app.view(CallbackId.REJECT_REASON.value)
    async def reject_reason(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        async def submit() -> str | None:
            meta = RejectMetadata.model_validate_json(view.get("private_metadata") or "{}")
            decide = ctx.service.post_decide if meta.phase == "post" else ctx.service.decide
            outcome = await decide(
                change_id=meta.change_id,
                user=str(body["user"]["id"]),
                decision=Decision.REJECT,
                reason=parse_reason(view),
                team_id=(body.get("team") or {}).get("id"),
            )
            return None if outcome.refusal is None else REFUSAL_TEXT[outcome.refusal]

        await answer_form(ack, REASON_FORM, submit)
