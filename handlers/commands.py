"""`/change …`: parse the text, call one use case, answer ephemerally in the ack."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.context import AppContext
from domain.service import ChangeNotFound, ListScope
from modals.cards import change_detail, change_list, help_blocks
from modals.intake import new_change_modal
from modals.text import escaped_clip

CHANGE_ID = re.compile(r"^CR-\d{4}-\d{4,}$", re.IGNORECASE)
LIST_HEADINGS = {
    ListScope.MINE: "Your change requests",
    ListScope.PENDING: "Changes waiting for approval",
    ListScope.UPCOMING: "Changes in the next two weeks",
}


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> Command:
    words = (text or "").split()
    return Command(words[0].lower() if words else "help", tuple(words[1:]))


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.command("/change")
    async def change_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        command = parse_command(str(body.get("text", "")))
        if command.name == "new":
            await ack()
            view = new_change_modal(ctx.policy, now=ctx.clock.now())
            await ctx.gateway.open_view(trigger_id=str(body.get("trigger_id")), view=view)
        elif command.name == "show":
            await ack(blocks=await show_blocks(ctx, command), response_type="ephemeral")
        elif command.name == "list":
            await ack(
                blocks=await list_blocks(ctx, command, str(body.get("user_id"))), response_type="ephemeral"
            )
        elif command.name == "help":
            await ack(blocks=help_blocks(), response_type="ephemeral")
        else:
            unknown = f"I don't know `/change {escaped_clip(command.name, 40)}`. Here is what I do:"
            await ack(blocks=help_blocks(unknown), response_type="ephemeral")


async def show_blocks(ctx: AppContext, command: Command) -> list[dict[str, Any]]:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return help_blocks("Which change? Use `/change show CR-2026-0001`.")
    try:
        change = await ctx.service.get_change(change_id=command.args[0])
    except ChangeNotFound:
        return help_blocks(f"There is no change {escaped_clip(command.args[0], 30)}.")
    return change_detail(change, zone=ctx.policy.zone)


async def list_blocks(ctx: AppContext, command: Command, user: str) -> list[dict[str, Any]]:
    try:
        scope = ListScope(command.args[0].lower()) if command.args else ListScope.MINE
    except ValueError:
        return help_blocks("List what? Use `/change list mine`, `pending` or `upcoming`.")
    changes = await ctx.service.list_changes(scope=scope, user=user)
    return change_list(changes, heading=LIST_HEADINGS[scope], zone=ctx.policy.zone)
