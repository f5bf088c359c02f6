"""The change calendar as iCalendar (RFC 5545), for Google Calendar and Outlook."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.calendar_policy import BlackoutHit, Freeze
from domain.enums import Status
from domain.listing import Counted
from domain.model import Change
from domain.policy import Policy
from domain.service import ChangeService
from domain.template_fields import web_link

ICS_STATUS = {
    Status.PENDING_APPROVAL: "TENTATIVE",
    Status.APPROVED: "CONFIRMED",
    Status.IN_PROGRESS: "CONFIRMED",
    Status.COMPLETED: "CONFIRMED",
    Status.FAILED: "CONFIRMED",
    Status.ROLLED_BACK: "CONFIRMED",
    Status.CLOSED: "CONFIRMED",
    Status.REJECTED: "CANCELLED",
    Status.CANCELLED: "CANCELLED",
}


async def feed_body(service: ChangeService, policy: Policy) -> bytes:
    """The whole feed: changes from a month ago to six months ahead, blackouts, freezes."""
    data = await service.calendar_feed()
    return render_ics(
        changes=data.changes,
        blackouts=data.blackouts,
        freezes=data.freezes,
        now=data.now,
        changes_channel=policy.channels.changes,
        until=data.until,
    )


def render_ics(
    *,
    changes: Sequence[Change],
    blackouts: Sequence[BlackoutHit],
    freezes: Sequence[Freeze],
    now: datetime,
    changes_channel: str,
    until: datetime,
) -> bytes:
    # Imported here, not at the top: only the feed needs icalendar, and loading it (~40 ms)
    # would otherwise delay every start-up.
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//changebot//change calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Change calendar")
    calendar.add("x-published-ttl", "PT15M")
    if isinstance(changes, Counted) and changes.more:  # the feed is capped: say so, and by how much
        calendar.add(
            "x-wr-caldesc",
            f"Only the {len(changes):,} earliest of {changes.total:,} changes in this period; "
            f"/change calendar in Slack shows any day.",
        )
    link = f"https://slack.com/app_redirect?channel={changes_channel}"
    for change in changes:
        event = Event()
        event.add("uid", f"{change.id}@changebot")
        event.add("dtstamp", now)
        event.add("last-modified", change.updated_at)
        event.add("sequence", change.version)
        event.add("dtstart", change.draft.starts_at)
        event.add("dtend", change.draft.ends_at)
        event.add("summary", f"{change.id}: {change.draft.title} [{change.status.value.replace('_', ' ')}]")
        event.add(
            "description",
            "\n".join(
                [
                    f"Category: {change.draft.category.value}",
                    f"Risk: {change.risk.value} (impact {change.draft.impact.value}, "
                    f"likelihood {change.draft.likelihood.value})",
                    f"Status: {change.status.value.replace('_', ' ')}",
                    f"Services: {', '.join(change.draft.services)}",
                    f"Requester: {change.requester}",
                    "",
                    change.draft.description,
                    *_links_text(change),
                ]
            ).strip(),
        )
        event.add("categories", [change.draft.category.value, f"risk-{change.risk.value}"])
        event.add("status", ICS_STATUS[change.status])
        event.add("url", link)
        _attach_links(event, change)
        calendar.add_component(event)
    for hit in blackouts:
        event = Event()
        name_key = hashlib.sha1(hit.name.encode()).hexdigest()[:10]  # stable across fetches and processes
        event.add("uid", f"blackout-{hit.start:%Y%m%dT%H%M%SZ}-{name_key}@changebot")
        event.add("dtstamp", now)
        event.add("dtstart", hit.start)
        event.add("dtend", hit.end)
        event.add("summary", f"Blackout: {hit.name}")
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["blackout"])
        calendar.add_component(event)
    for freeze in freezes:
        event = Event()
        event.add("uid", f"freeze-{freeze.id}@changebot")
        event.add("dtstamp", now)
        event.add("dtstart", freeze.started_at)
        event.add("dtend", freeze.ended_at or until)
        event.add("summary", f"Change freeze: {freeze.reason or 'declared in Slack'}")
        still = "" if freeze.ended_at else "; still on"
        event.add("description", f"Declared by {freeze.started_by}{still}")
        event.add("categories", ["freeze"])
        calendar.add_component(event)
    return calendar.to_ical()


def _attach_links(event: Any, change: Change) -> None:
    """The PRs, tickets, runbooks and dashboards the change names, as attachments."""
    for url in change.draft.links:
        if web_link(url):
            event.add("attach", url)


def _links_text(change: Change) -> list[str]:
    """The change's links for the description: calendars show them as clickable text."""
    links = [url for url in change.draft.links if web_link(url)]
    return ["", "Links:", *links] if links else []
