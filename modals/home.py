"""The App Home tab: my CRs, what waits for me (with buttons), the week ahead, blackouts."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
)
from slack_sdk.models.views import View

from domain.enums import Status
from domain.model import Change
from domain.read_models import HomeView
from modals.blocks import blackout_line, change_line, decision_buttons
from modals.counts import ICS_FEED, list_command, more_line, total_label
from modals.emergency import post_actions
from modals.text import Mrkdwn, context, escaped_clip, join_md, md, mention, section, slack_date

NEW_CHANGE_ACTION = "home_new_change"


def _decision_buttons(change: Change) -> ActionsBlock:
    if change.status is Status.PENDING_APPROVAL:
        return decision_buttons(change, prefix="home-decide")
    return post_actions(change)


def _more(line: Mrkdwn | None) -> list[Block]:
    """The "… and N more: where" line under a capped section, if any."""
    return [context(line)] if line else []


def home_view(home: HomeView, *, zone: ZoneInfo) -> dict[str, Any]:
    blocks: list[Block] = [
        HeaderBlock(text="Change management"),
        ActionsBlock(
            block_id="home-actions",
            elements=[
                ButtonElement(
                    text="New change request", action_id=NEW_CHANGE_ACTION, value="new", style="primary"
                ),
            ],
        ),
        section(md("*Waiting for you* ({})", total_label(home.awaiting_me))),
    ]
    if not home.awaiting_me:
        blocks.append(context(Mrkdwn("Nothing to approve. :tada:")))
    for change in home.awaiting_me[:12]:
        note = " · post-approval" if change.status is not Status.PENDING_APPROVAL else ""
        blocks.append(section(md("{}{} · by {}", change_line(change, zone), note, mention(change.requester))))
        blocks.append(_decision_buttons(change))
    blocks += _more(more_line(home.awaiting_me, 12, list_command("pending")))
    blocks += [DividerBlock(), section(md("*Your change requests* ({})", total_label(home.mine)))]
    blocks += [section(change_line(c, zone)) for c in home.mine[:15]] or [
        context(Mrkdwn("None yet: `/change new` files one."))
    ]
    blocks += _more(more_line(home.mine, 15, list_command("mine")))
    blocks += [DividerBlock(), section(md("*The next 7 days* ({})", total_label(home.upcoming)))]
    blocks += [section(change_line(c, zone)) for c in home.upcoming[:20]] or [
        context(Mrkdwn("No changes scheduled."))
    ]
    blocks += _more(more_line(home.upcoming, 20, list_command("upcoming")))
    periods = [
        md(
            ":no_entry_sign: {} (freeze{})",
            escaped_clip(f.reason or "Change freeze", 100),
            md(", until {}", slack_date(f.ended_at, zone)) if f.ended_at else Mrkdwn(", until lifted"),
        )
        for f in home.freezes
        if f.ended_at is None or f.ended_at > home.now
    ]
    periods += [blackout_line(b, zone, name_limit=80) for b in home.blackouts[:10]]
    if len(home.blackouts) > 10:
        periods.append(md("… and {} more: {}", f"{len(home.blackouts) - 10:,}", ICS_FEED))
    listed = join_md("\n", periods) if periods else Mrkdwn("None.")
    blocks += [DividerBlock(), section(md("*Blackouts and freezes, next 14 days*\n{}", listed))]
    blocks.append(context(md("Updated {} · times in your time zone", slack_date(home.now, zone))))
    return View(type="home", blocks=blocks[:100]).to_dict()
