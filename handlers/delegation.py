"""`/change delegate @user until 2026-12-24` and `/change delegate off`: parse, call the
delegation use case, answer in one line."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from handlers.context import AppContext
from modals.cards import help_blocks
from modals.text import Mrkdwn, md, mention

# Slack sends a mention in a command's text as <@U123|name> (or <@U123>); a bare id is taken too.
MENTION = re.compile(r"^(?:<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>|@?([UW][A-Z0-9]{2,}))$")
USAGE = Mrkdwn("Use `/change delegate @someone until 2026-12-24`, or `/change delegate off` to end it.")


def parse_delegation(args: tuple[str, ...]) -> tuple[str, date] | None:
    """(delegate, last day) from `@user until YYYY-MM-DD`, else None."""
    if len(args) != 3 or args[1].lower() != "until":
        return None
    found = MENTION.match(args[0])
    try:
        day = date.fromisoformat(args[2])
    except ValueError:
        return None
    return (found.group(1) or found.group(2), day) if found else None


async def delegate_answer(ctx: AppContext, *, user: str, args: tuple[str, ...]) -> list[dict[str, Any]]:
    if [a.lower() for a in args] == ["off"]:
        ended = await ctx.service.end_delegation(user=user)
        if ended.refusal or ended.delegation is None:
            return help_blocks(md("Nothing to end: {}.", ended.refusal or "no delegation"))[:1]
        back = md("Your approvals are yours again; {} was told.", mention(ended.delegation.delegate))
        return help_blocks(back)[:1]
    parsed = parse_delegation(args)
    if parsed is None:
        return help_blocks(USAGE)[:1]
    delegate, day = parsed
    outcome = await ctx.service.delegate(user=user, delegate=delegate, until=day)
    if outcome.refusal:
        return help_blocks(md("Not delegated to {}: {}.", mention(delegate), outcome.refusal))[:1]
    done = md(
        "Through {}, {} may approve what you may and gets your approval requests (told now). "
        "End it early with `/change delegate off`.",
        day.isoformat(),
        mention(delegate),
    )
    return help_blocks(done)[:1]
