"""The submitted CR form: validated and stored before the ack, so errors show inline."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.errors import ConflictsFound
from domain.intake import IntakeRejected
from handlers.context import AppContext
from modals.ids import CallbackId
from modals.intake import inline_errors, new_change_modal, parse_change_form


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.view(CallbackId.NEW_CHANGE.value)
    async def submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            await ctx.service.submit_change(
                form=parse_change_form(view),
                requester=str(body["user"]["id"]),
                team_id=(body.get("team") or {}).get("id"),
            )
        except IntakeRejected as exc:
            await ack(response_action="errors", errors=inline_errors(exc.errors, view))
            return
        except ConflictsFound as exc:
            # Same blocks and ids, so Slack keeps what was typed; a second Submit confirms.
            warning = new_change_modal(ctx.policy, now=ctx.clock.now(), conflicts=exc.conflicts)
            await ack(response_action="update", view=warning)
            return
        await ack()
