"""`/change …`: parse the text, call one use case, answer ephemerally in the ack."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.calendar import parse_calendar_range, report_range
from domain.intake import IntakeRejected
from domain.service import ChangeNotFound, DecisionConflict, ListScope
from handlers.context import AppContext
from modals.cards import change_detail, change_list, help_blocks
from modals.emergency import EmergencyMetadata, emergency_modal
from modals.intake import new_change_modal
from modals.text import escaped_clip
from modals.timeline import calendar_blocks, reschedule_modal

CHANGE_ID = re.compile(r"^CR-\d{4}-\d{4,}$", re.IGNORECASE)
LIST_HEADINGS = {
    ListScope.MINE: "Your change requests",
    ListScope.PENDING: "Changes waiting for approval",
    ListScope.UPCOMING: "Changes in the next two weeks",
}
Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    user: str
    trigger_id: str
    channel: str = ""
    team_domain: str = ""


def parse_command(body: dict[str, Any]) -> Command:
    words = str(body.get("text") or "").split()
    return Command(
        name=words[0].lower() if words else "help",
        args=tuple(words[1:]),
        user=str(body.get("user_id")),
        trigger_id=str(body.get("trigger_id")),
        channel=str(body.get("channel_id") or ""),
        team_domain=str(body.get("team_domain") or ""),
    )


def register(app: AsyncApp, ctx: AppContext) -> None:
    @app.command("/change")
    async def change_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        command = parse_command(body)
        if command.name in MODAL_COMMANDS:
            await ack()  # the trigger id is only good for 3 s: acknowledge, then open the modal
            refusal = await MODAL_COMMANDS[command.name](ctx, command)
            if refusal:
                await ctx.gateway.ephemeral(
                    channel=str(body.get("channel_id")), user=command.user, text=refusal
                )
            return
        answer = ANSWERS.get(command.name, unknown)
        await ack(blocks=await answer(ctx, command), response_type="ephemeral")


async def open_new(ctx: AppContext, command: Command) -> str | None:
    await ctx.gateway.open_view(
        trigger_id=command.trigger_id, view=new_change_modal(ctx.policy, now=ctx.clock.now())
    )
    return None


async def open_emergency(ctx: AppContext, command: Command) -> str | None:
    """From the incidents channel, the incident context (the channel's link) is prefilled."""
    incident = " ".join(command.args) or None
    in_incidents = bool(command.channel) and command.channel == ctx.policy.channels.incidents
    if incident is None and in_incidents and command.team_domain:
        incident = f"https://{command.team_domain}.slack.com/archives/{command.channel}"
    view = emergency_modal(ctx.policy, incident=incident, metadata=EmergencyMetadata(channel=command.channel))
    await ctx.gateway.open_view(trigger_id=command.trigger_id, view=view)
    return None


async def open_reschedule(ctx: AppContext, command: Command) -> str | None:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return "Which change? Use `/change reschedule CR-2026-0001`."
    try:
        change = await ctx.service.get_change(change_id=command.args[0])
    except ChangeNotFound:
        return f"There is no change {escaped_clip(command.args[0], 30)}."
    await ctx.gateway.open_view(trigger_id=command.trigger_id, view=reschedule_modal(change))
    return None


async def show(ctx: AppContext, command: Command) -> Blocks:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return help_blocks("Which change? Use `/change show CR-2026-0001`.")
    try:
        change = await ctx.service.get_change(change_id=command.args[0])
    except ChangeNotFound:
        return help_blocks(f"There is no change {escaped_clip(command.args[0], 30)}.")
    return change_detail(change, zone=ctx.policy.zone)


async def list_changes(ctx: AppContext, command: Command) -> Blocks:
    try:
        scope = ListScope(command.args[0].lower()) if command.args else ListScope.MINE
    except ValueError:
        return help_blocks("List what? Use `/change list mine`, `pending` or `upcoming`.")
    changes = await ctx.service.list_changes(scope=scope, user=command.user)
    return change_list(changes, heading=LIST_HEADINGS[scope], zone=ctx.policy.zone)


async def cancel(ctx: AppContext, command: Command) -> Blocks:
    if not command.args or not CHANGE_ID.match(command.args[0]):
        return help_blocks("Which change? Use `/change cancel CR-2026-0001 [reason]`.")
    try:
        outcome = await ctx.service.cancel(
            change_id=command.args[0], user=command.user, reason=" ".join(command.args[1:])
        )
    except (ChangeNotFound, DecisionConflict) as exc:
        return help_blocks(escaped_clip(str(exc), 200))
    if outcome.refusal:
        return help_blocks(f"Not cancelled: {escaped_clip(outcome.refusal, 300)}.")
    return help_blocks(f"{outcome.change.id} is cancelled; its reminders are dropped.")[:1]


async def calendar(ctx: AppContext, command: Command) -> Blocks:
    span = parse_calendar_range(
        command.args[0] if command.args else "today", now=ctx.clock.now(), zone=ctx.policy.zone
    )
    if span is None:
        return help_blocks("Which days? Use `/change calendar today`, `week` or a date like `2026-12-01`.")
    return calendar_blocks(await ctx.service.calendar(span=span), zone=ctx.policy.zone)


async def freeze(ctx: AppContext, command: Command) -> Blocks:
    action = command.args[0].lower() if command.args else ""
    if action not in ("start", "end"):
        return help_blocks("Use `/change freeze start [reason]` or `/change freeze end`.")
    if action == "start":
        frozen, refusal = await ctx.service.start_freeze(user=command.user, reason=" ".join(command.args[1:]))
    else:
        frozen, refusal = await ctx.service.end_freeze(user=command.user)
    if refusal or frozen is None:
        return help_blocks(f"Not done: {escaped_clip(refusal or 'unknown', 300)}.")[:1]
    done = "on: no changes but emergencies" if action == "start" else "lifted"
    return help_blocks(f"The change freeze is {done}. The changes channel has been told.")[:1]


async def incident(ctx: AppContext, command: Command) -> Blocks:
    if len(command.args) < 2 or not CHANGE_ID.match(command.args[0]):
        return help_blocks("Use `/change incident CR-2026-0001 INC-123` (an incident id or link).")
    try:
        outcome = await ctx.service.link_incident(
            change_id=command.args[0], user=command.user, incident=" ".join(command.args[1:])
        )
    except (ChangeNotFound, DecisionConflict, IntakeRejected) as exc:
        return help_blocks(f"Not linked: {escaped_clip(str(exc), 300)}.")[:1]
    return help_blocks(f"{outcome.change.id} is linked to the incident; it counts as a change failure.")[:1]


async def report(ctx: AppContext, command: Command) -> Blocks:
    span = report_range(
        command.args[0] if command.args else "month", now=ctx.clock.now(), zone=ctx.policy.zone
    )
    if span is None:
        return help_blocks("Which period? Use `/change report week`, `month` or `2026-10`.")
    await ctx.service.request_report(span=span, channel=command.channel or ctx.policy.channels.changes)
    return help_blocks(f"Posting *{escaped_clip(span.title, 100)}* here, with its chart.")[:1]


async def help_answer(ctx: AppContext, command: Command) -> Blocks:
    return help_blocks()


async def unknown(ctx: AppContext, command: Command) -> Blocks:
    return help_blocks(f"I don't know `/change {escaped_clip(command.name, 40)}`. Here is what I do:")


MODAL_COMMANDS: dict[str, Callable[[AppContext, Command], Awaitable[str | None]]] = {
    "new": open_new,
    "emergency": open_emergency,
    "reschedule": open_reschedule,
}
ANSWERS: dict[str, Callable[[AppContext, Command], Awaitable[Blocks]]] = {
    "show": show,
    "list": list_changes,
    "cancel": cancel,
    "calendar": calendar,
    "freeze": freeze,
    "incident": incident,
    "report": report,
    "help": help_answer,
}
