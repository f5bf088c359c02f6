"""Events API: an @mention answers with help in the thread."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from handlers.context import AppContext
from modals.cards import HELP_TEXT


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.event("app_mention")
    async def mentioned(event: dict[str, Any]) -> None:
        await ctx.gateway.message(
            channel=str(event.get("channel")),
            text=HELP_TEXT,
            thread_ts=str(event.get("thread_ts") or event.get("ts") or "") or None,
            dedupe_key=f"mention:{event.get('channel')}:{event.get('ts')}",
        )
