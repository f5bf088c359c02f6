"""The words for capped lists: the true total, and where the rest is. Pure."""

from __future__ import annotations

from domain.listing import Counted, Page
from modals.text import Mrkdwn, md

ICS_FEED = Mrkdwn("the calendar feed (ICS)")


def total_label(counted: Counted) -> str:
    """`1,996`, or `at least 100` when only a lower bound is known."""
    return f"{counted.total:,}" if counted.exact else f"at least {counted.total:,}"


def more_line(counted: Counted, shown: int, where: Mrkdwn) -> Mrkdwn | None:
    """`… and 1,896 more: <where>` when fewer than the total are shown, else None."""
    more = counted.total - min(shown, len(counted))
    if more <= 0:
        return None if counted.exact else md("… and maybe more: {}", where)
    amount = f"{more:,}" if counted.exact else f"at least {more:,}"
    return md("… and {} more: {}", amount, where)


def list_command(scope: str) -> Mrkdwn:
    return md("`/change list {}`", scope)


def page_footer(page: Page, *, command: str) -> Mrkdwn | None:
    """`Showing 21–40 of 1,996 · next: /change list pending --page 3` (None for a short list)."""
    if page.total <= page.size and page.number == 1:
        return None
    shown = md("Showing {}–{} of {}", f"{page.first:,}", f"{page.last:,}", f"{page.total:,}")
    if page.has_next:
        return md("{} · next: `{} --page {}`", shown, command, str(page.number + 1))
    return shown


def past_end(page: Page, *, command: str) -> Mrkdwn:
    """One line for a page number beyond the last page."""
    if page.total == 0:
        return md("There is no page {}: `{}` is empty.", f"{page.number:,}", command)
    return md(
        "There is no page {}: {} changes make {} page{}; the last is `{} --page {}`.",
        f"{page.number:,}",
        f"{page.total:,}",
        f"{page.pages:,}",
        "s" if page.pages > 1 else "",
        command,
        str(page.pages),
    )
