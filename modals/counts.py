"""The words for capped lists: the true total, and where the rest is. Pure."""

from __future__ import annotations

from domain.listing import Counted, Page

ICS_FEED = "the calendar feed (ICS)"


def total_label(counted: Counted) -> str:
    """`1,996`, or `at least 100` when only a lower bound is known."""
    return f"{counted.total:,}" if counted.exact else f"at least {counted.total:,}"


def more_line(counted: Counted, shown: int, where: str) -> str | None:
    """`… and 1,896 more: <where>` when fewer than the total are shown, else None."""
    more = counted.total - min(shown, len(counted))
    if more <= 0:
        return None if counted.exact else f"… and maybe more: {where}"
    amount = f"{more:,}" if counted.exact else f"at least {more:,}"
    return f"… and {amount} more: {where}"


def list_command(scope: str) -> str:
    return f"`/change list {scope}`"


def page_footer(page: Page, *, command: str) -> str | None:
    """`Showing 21–40 of 1,996 · next: /change list pending --page 3` (None for a short list)."""
    if page.total <= page.size and page.number == 1:
        return None
    text = f"Showing {page.first:,}–{page.last:,} of {page.total:,}"
    if page.has_next:
        text += f" · next: `{command} --page {page.number + 1}`"
    return text


def past_end(page: Page, *, command: str) -> str:
    """One line for a page number beyond the last page."""
    if page.total == 0:
        return f"There is no page {page.number:,}: `{command}` is empty."
    return (
        f"There is no page {page.number:,}: {page.total:,} changes make {page.pages:,} "
        f"page{'s' if page.pages > 1 else ''}; the last is `{command} --page {page.pages}`."
    )
