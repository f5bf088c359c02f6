"""App Home: published when opened, and its New change request button."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from handlers.context import AppContext
from modals.home import NEW_CHANGE_ACTION
from modals.intake import new_change_modal


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await ctx.service.open_home(user=str(event.get("user")))

    @app.action(NEW_CHANGE_ACTION)
    async def new_from_home(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        view = new_change_modal(ctx.policy, now=ctx.clock.now())
        await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)
