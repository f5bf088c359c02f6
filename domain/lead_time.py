"""Minimum lead time per category (process 004: normal changes with 24 hours' notice,
major changes 7 days ahead). A change filed closer to its start takes the exception
path, like one outside its windows: a reason and one more approval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.enums import Category


def default_lead_time() -> dict[Category, timedelta]:
    """Process 004's advance notice: 24 hours for normal changes, 7 days for major ones."""
    return {Category.NORMAL: timedelta(hours=24), Category.MAJOR: timedelta(days=7)}


@dataclass(frozen=True)
class LeadTime:
    """The earliest start a category's lead time allows, and what to say when it is not met."""

    earliest: datetime
    problem: str


def lead_in_words(lead: timedelta) -> str:
    """7 days, 24 hours, 90 minutes: how a lead time reads in a message."""
    seconds = int(lead.total_seconds())
    if seconds % 86400 == 0 and seconds > 2 * 86400:
        days = seconds // 86400
        return f"{days} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lead_time_floor(
    lead_times: Mapping[Category, timedelta], *, category: Category, now: datetime
) -> LeadTime | None:
    """The category's floor on the start, or None when it has no lead time (emergencies
    never have one: they restore service now)."""
    lead = lead_times.get(category)
    if category is Category.EMERGENCY or not lead:
        return None
    return LeadTime(
        earliest=now + lead,
        problem=(
            f"{category.value.capitalize()} changes are filed at least "
            f"{lead_in_words(lead)} before they start."
        ),
    )
