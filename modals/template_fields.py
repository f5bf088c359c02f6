"""How the change request template's further fields read on the card and in `/change show`:
links (a Slack link only when the URL is a plain web address, its label the URL itself, so
no text can pose as a link), stakeholders, the rollback's duration and triggers, success
criteria and dependencies. Pure: every user string is escaped."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from domain.limits import MAX_LINKS
from domain.model import ChangeDraft
from domain.template_fields import STAKEHOLDER_ID, web_link
from modals.blocks import SECTION_LIMIT, titled_lines
from modals.text import Mrkdwn, escaped_clip, join_md, md, mention, section


def link_md(url: str) -> Mrkdwn:
    """A web address as a Slack link labelled with the address (scheme dropped); anything
    else (an old row, a hand-edited one) as escaped text that links nowhere."""
    if web_link(url):
        return md("<{}|{}>", url, escaped_clip(url.split("://", 1)[1], 80))
    return escaped_clip(url, 300)


def stakeholder_md(target: str) -> Mrkdwn:
    """A person as a mention, a channel as a channel link; anything else escaped."""
    if not STAKEHOLDER_ID.match(target):
        return escaped_clip(target, 40)
    if target.startswith(("U", "W")):
        return mention(target)
    return md("<#{}>", target)


def rollback_text(draft: ChangeDraft) -> Mrkdwn | None:
    """The rollback plan, how long a rollback takes and this change's own triggers."""
    parts: list[Mrkdwn] = []
    if draft.rollback_plan:
        parts.append(md("*Rollback plan*\n{}", escaped_clip(draft.rollback_plan, 1500)))
    if draft.rollback_minutes is not None:
        parts.append(md("_Rolling back takes about {} min._", str(draft.rollback_minutes)))
    if draft.rollback_triggers:
        parts.append(md("*Roll back if* {}", escaped_clip(draft.rollback_triggers, 1000)))
    return join_md("\n", parts) if parts else None


def card_blocks(draft: ChangeDraft) -> list[Block]:
    """What the card shows of the template's fields: links and who is notified."""
    lines = [md("• {}", link_md(url)) for url in draft.links[:MAX_LINKS]]
    if draft.stakeholders:
        notified = join_md(", ", [stakeholder_md(s) for s in draft.stakeholders])
        lines.append(md("*Notify* {} (at T-24h and on completion)", notified))
    if not lines:
        return []
    heading = "Links" if draft.links else "Stakeholders"
    return [section(titled_lines(heading, lines))]


def detail_blocks(draft: ChangeDraft) -> list[Block]:
    """What `/change show` adds: the success criteria and the dependencies."""
    return [
        section(md("*{}*\n{}", label, escaped_clip(text, SECTION_LIMIT - 40)))
        for label, text in (
            ("Success criteria", draft.success_criteria),
            ("Dependencies", draft.dependencies),
        )
        if text
    ]
