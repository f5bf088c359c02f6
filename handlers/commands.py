"""`/change …`: parse the text, call one use case, answer ephemerally in the ack."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from domain.bounds import EARLIEST_DAY, last_calendar_day
from domain.calendar import parse_calendar_range, report_range
from domain.errors import ChangeNotFound, DecisionConflict
from domain.intake import IntakeRejected
from domain.ports import ListScope
from domain.read_models import ProgressAction
from handlers.context import AppContext
from handlers.delegation import delegate_answer
from handlers.editing import edit_form
from modals.cards import change_detail, change_list, help_blocks
from modals.counts import page_footer, past_end
from modals.emergency import EmergencyMetadata, emergency_modal
from modals.intake import new_change_modal
from modals.text import Mrkdwn, escaped_clip, md, slack_date
from modals.timeline import calendar_blocks, reschedule_modal

CHANGE_ID = re.compile(r"^CR-\d{4}-\d{4,}$", re.IGNORECASE)
LIST_HEADINGS = {
    ListScope.MINE: "Your change requests",
    ListScope.PENDING: "Changes waiting for approval",
    ListScope.UPCOMING: "Changes in the next two weeks",
    ListScope.IN_PROGRESS: "Changes in progress",
    ListScope.OVERDUE: "Overdue changes: window ended, not completed",
    ListScope.POST_OVERDUE: "Emergencies with post-approval overdue",
}
PAGE_NUMBER = re.compile(r"^[1-9]\d{0,8}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    user: str
    trigger_id: str
    channel: str = ""
    team_domain: str = ""


# With escaping on (manifest.yml), Slack wraps a typed link as <https://…> or <https://…|label>.
ESCAPED_LINK = re.compile(r"^<(https?://[^|>\s]+)(?:\|[^>]*)?>$")


def parse_command(body: dict[str, Any]) -> Command:
    """The sub-command and its words; a link Slack escaped is taken as the bare URL typed,
    a mention (<@U…|name>) is kept for the sub-commands that name people."""
    words = [ESCAPED_LINK.sub(r"\1", word) for word in str(body.get("text") or "").split()]
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


async def open_new(ctx: AppContext, command: Command) -> Mrkdwn | None:
    await ctx.gateway.open_view(
        trigger_id=command.trigger_id, view=new_change_modal(ctx.policy, now=ctx.clock.now())
    )
    return None


async def open_emergency(ctx: AppContext, command: Command) -> Mrkdwn | None:
    """From the incidents channel, the incident context (the channel's link) is prefilled."""
    incident = " ".join(command.args) or None
    in_incidents = bool(command.channel) and command.channel == ctx.policy.channels.incidents
    if incident is None and in_incidents and command.team_domain:
        incident = f"https://{command.team_domain}.slack.com/archives/{command.channel}"
    view = emergency_modal(ctx.policy, incident=incident, metadata=EmergencyMetadata(channel=command.channel))
    await ctx.gateway.open_view(trigger_id=command.trigger_id, view=view)
    return None


async def open_reschedule(ctx: AppContext, command: Command) -> Mrkdwn | None:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return Mrkdwn("Which change? Use `/change reschedule CR-2026-0001`.")
    try:
        change = await ctx.service.get_change(change_id=command.args[0])
    except ChangeNotFound:
        return md("There is no change {}.", escaped_clip(command.args[0], 30))
    await ctx.gateway.open_view(trigger_id=command.trigger_id, view=reschedule_modal(change))
    return None


async def open_edit(ctx: AppContext, command: Command) -> Mrkdwn | None:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return Mrkdwn("Which change? Use `/change edit CR-2026-0001`.")
    return await edit_form(ctx, change_id=command.args[0], user=command.user, trigger_id=command.trigger_id)


async def show(ctx: AppContext, command: Command) -> Blocks:
    if len(command.args) != 1 or not CHANGE_ID.match(command.args[0]):
        return help_blocks(Mrkdwn("Which change? Use `/change show CR-2026-0001`."))
    try:
        change = await ctx.service.get_change(change_id=command.args[0])
    except ChangeNotFound:
        return help_blocks(md("There is no change {}.", escaped_clip(command.args[0], 30)))
    approvers = await ctx.service.who_can_approve(change=change)
    return change_detail(change, zone=ctx.policy.zone, approvers=approvers)


def parse_list(args: tuple[str, ...]) -> tuple[ListScope, int] | Blocks:
    """`[scope] [--page N]` (or `--page=N`), else the one-line answer saying how."""
    words = [w for a in args for w in (a.split("=", 1) if a.lower().startswith("--page=") else [a])]
    page = "1"
    if "--page" in (w.lower() for w in words):
        at = [w.lower() for w in words].index("--page")
        page = words[at + 1] if at + 1 < len(words) else ""
        words = words[:at] + words[at + 2 :]
    if len(words) > 1 or (words and words[0].lower() not in {s.value for s in ListScope}):
        scopes = "`, `".join(ListScope)
        return help_blocks(md("List what? Use `/change list` with `{}`, and `--page 2` for more.", scopes))
    scope = ListScope(words[0].lower()) if words else ListScope.MINE
    if not PAGE_NUMBER.match(page):
        example = md("Which page? Use a page number from 1, like `/change list {} --page 2`.", scope)
        return help_blocks(example)[:1]
    return scope, int(page)


async def list_changes(ctx: AppContext, command: Command) -> Blocks:
    parsed = parse_list(command.args)
    if isinstance(parsed, list):
        return parsed
    scope, number = parsed
    page = await ctx.service.list_changes(scope=scope, user=command.user, page=number)
    where = f"/change list {scope}"
    if page.past_end:
        return help_blocks(past_end(page, command=where))[:1]
    return change_list(
        page.items,
        heading=LIST_HEADINGS[scope],
        zone=ctx.policy.zone,
        footer=page_footer(page, command=where),
    )


async def cancel(ctx: AppContext, command: Command) -> Blocks:
    if not command.args or not CHANGE_ID.match(command.args[0]):
        return help_blocks(Mrkdwn("Which change? Use `/change cancel CR-2026-0001 [reason]`."))
    try:
        outcome = await ctx.service.cancel(
            change_id=command.args[0], user=command.user, reason=" ".join(command.args[1:])
        )
    except (ChangeNotFound, DecisionConflict) as exc:
        return help_blocks(escaped_clip(str(exc), 200))
    if outcome.refusal:
        return help_blocks(md("Not cancelled: {}.", escaped_clip(outcome.refusal, 300)))
    return help_blocks(md("{} is cancelled; its reminders are dropped.", outcome.change.id))[:1]


async def calendar(ctx: AppContext, command: Command) -> Blocks:
    now, zone, ahead = ctx.clock.now(), ctx.policy.zone, ctx.policy.limits.max_ahead
    span = parse_calendar_range(
        command.args[0] if command.args else "today", now=now, zone=zone, max_ahead=ahead
    )
    if span is None:
        last = last_calendar_day(now=now, zone=zone, max_ahead=ahead)
        return help_blocks(
            md(
                "Which days? Use `/change calendar today`, `week` or a date like `2026-12-01`, "
                "from {} to {}.",
                EARLIEST_DAY.isoformat(),
                last.isoformat(),
            )
        )
    return calendar_blocks(await ctx.service.calendar(span=span), zone=ctx.policy.zone)


def freeze_words(words: tuple[str, ...]) -> tuple[date | None, str] | None:
    """`[YYYY-MM-DD] [reason]` after `freeze start`: (the day it ends, the reason); None for
    a date that is no day."""
    if not words or not DAY.match(words[0]):
        return None, " ".join(words)
    try:
        return date.fromisoformat(words[0]), " ".join(words[1:])
    except ValueError:
        return None


async def freeze(ctx: AppContext, command: Command) -> Blocks:
    action = command.args[0].lower() if command.args else ""
    parsed = freeze_words(command.args[1:])
    if action not in ("start", "end") or parsed is None:
        return help_blocks(
            Mrkdwn("Use `/change freeze start [2026-12-24] [reason]` or `/change freeze end`.")
        )
    if action == "start":
        until, reason = parsed
        frozen, refusal = await ctx.service.start_freeze(user=command.user, reason=reason, until=until)
    else:
        frozen, refusal = await ctx.service.end_freeze(user=command.user)
    if refusal or frozen is None:
        return help_blocks(md("Not done: {}.", escaped_clip(refusal or "unknown", 300)))[:1]
    done = Mrkdwn("lifted")
    if action == "start":
        when = (
            md("until {}", slack_date(frozen.ended_at, ctx.policy.zone))
            if frozen.ended_at
            else "until lifted"
        )
        done = md("on {}: no changes but emergencies", when)
    return help_blocks(md("The change freeze is {}. The changes channel has been told.", done))[:1]


async def incident(ctx: AppContext, command: Command) -> Blocks:
    if len(command.args) < 2 or not CHANGE_ID.match(command.args[0]):
        return help_blocks(Mrkdwn("Use `/change incident CR-2026-0001 INC-123` (an incident id or link)."))
    try:
        outcome = await ctx.service.link_incident(
            change_id=command.args[0], user=command.user, incident=" ".join(command.args[1:])
        )
    except (ChangeNotFound, DecisionConflict, IntakeRejected) as exc:
        return help_blocks(md("Not linked: {}.", escaped_clip(str(exc), 300)))[:1]
    if outcome.refusal:
        return help_blocks(md("Not linked: {}.", escaped_clip(outcome.refusal, 300)))[:1]
    linked = md("{} is linked to the incident; it counts as a change failure.", outcome.change.id)
    return help_blocks(linked)[:1]


async def start(ctx: AppContext, command: Command) -> Blocks:
    """Start a change; `--override <reason>` starts it outside its window or in a freeze."""
    args = command.args
    override = args[1:2] == ("--override",)
    if not args or not CHANGE_ID.match(args[0]) or (len(args) > 1 and not override):
        return help_blocks(Mrkdwn("Use `/change start CR-2026-0001` or `… --override &lt;reason&gt;`."))[:1]
    reason = " ".join(args[2:]).strip().strip("\"'“”").strip()
    if override and not reason:
        return help_blocks(Mrkdwn("Say why it must start now: `--override &lt;reason&gt;`."))[:1]
    try:
        outcome = await ctx.service.record_progress(
            change_id=args[0], user=command.user, action=ProgressAction.START, override=reason
        )
    except (ChangeNotFound, DecisionConflict, IntakeRejected) as exc:
        return help_blocks(md("Not started: {}.", escaped_clip(str(exc), 300)))[:1]
    if outcome.refusal:
        return help_blocks(md("Not started: {}.", escaped_clip(outcome.refusal, 400)))[:1]
    return help_blocks(md("{} is in progress.", outcome.change.id))[:1]


async def report(ctx: AppContext, command: Command) -> Blocks:
    span = report_range(
        command.args[0] if command.args else "month", now=ctx.clock.now(), zone=ctx.policy.zone
    )
    if span is None:
        return help_blocks(
            md(
                "Which period? Use `/change report week`, `month` or a month like `2026-10`, "
                "from {} to this month.",
                f"{EARLIEST_DAY:%Y-%m}",
            )
        )
    await ctx.service.request_report(span=span, channel=command.channel or ctx.policy.channels.changes)
    return help_blocks(md("Posting *{}* here, with its chart.", escaped_clip(span.title, 100)))[:1]


async def delegate(ctx: AppContext, command: Command) -> Blocks:
    return await delegate_answer(ctx, user=command.user, args=command.args)


async def help_answer(ctx: AppContext, command: Command) -> Blocks:
    return help_blocks()


async def unknown(ctx: AppContext, command: Command) -> Blocks:
    return help_blocks(
        md("I don't know `/change {}`. Here is what I do:", escaped_clip(command.name, 40)), with_help=True
    )


# What each `/change` word does to state, for the repeat check at the door (bot/replay.py):
# a replayed or double-sent request that changes something must act once; one that only
# reads or opens a form costs no claim (a form's submission is claimed instead).
CHANGES_STATE = frozenset({"cancel", "freeze", "incident", "start", "report", "delegate"})
READS_ONLY = frozenset({"new", "emergency", "reschedule", "edit", "show", "list", "calendar", "help"})

MODAL_COMMANDS: dict[str, Callable[[AppContext, Command], Awaitable[Mrkdwn | None]]] = {
    "new": open_new,
    "emergency": open_emergency,
    "reschedule": open_reschedule,
    "edit": open_edit,
}
ANSWERS: dict[str, Callable[[AppContext, Command], Awaitable[Blocks]]] = {
    "show": show,
    "list": list_changes,
    "cancel": cancel,
    "calendar": calendar,
    "freeze": freeze,
    "incident": incident,
    "start": start,
    "report": report,
    "delegate": delegate,
    "help": help_answer,
}
