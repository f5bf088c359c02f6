"""Reading CRs: one CR, and the `/change list` scopes (which the calendar's sections reuse)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from domain.enums import Status
from domain.listing import PAGE_SIZE, Page, page_offset
from domain.model import Change, PostState
from domain.ports import ChangeQuery, ListScope
from domain.usecases.base import UseCase

UPCOMING_DAYS = 14


class Queries(UseCase):
    async def get_change(self, *, change_id: str, history: bool = True) -> Change:
        """The CR; `history=False` when only rendering a card or message (no full audit trail)."""
        return await self._require(change_id, history=history)

    async def list_changes(self, *, scope: ListScope, user: str, page: int = 1) -> Page:
        """One page of a list and its true total, counted in storage (nothing else loaded)."""
        page = max(page, 1)
        query = scope_query(scope, user=user, now=self._clock.now(), offset=page_offset(page))
        if page == 1:
            items = await self._repo.list_changes(query)
            total = len(items) if len(items) < PAGE_SIZE else await self._repo.count_changes(query)
            return Page(tuple(items), page, total)
        total = await self._repo.count_changes(query)
        if query.offset >= total:
            return Page((), page, total)
        return Page(tuple(await self._repo.list_changes(query)), page, total)


def scope_query(
    scope: ListScope, *, user: str, now: datetime, limit: int = PAGE_SIZE, offset: int = 0
) -> ChangeQuery:
    """What a `/change list` scope holds; the calendar's sections are these lists too."""
    if scope is ListScope.MINE:
        query = ChangeQuery(requester=user)
    elif scope is ListScope.PENDING:
        query = ChangeQuery(statuses=(Status.PENDING_APPROVAL,))
    elif scope is ListScope.IN_PROGRESS:
        query = ChangeQuery(statuses=(Status.IN_PROGRESS,))
    elif scope is ListScope.OVERDUE:
        query = ChangeQuery(statuses=(Status.APPROVED, Status.IN_PROGRESS), ends_before=now)
    elif scope is ListScope.POST_OVERDUE:
        query = ChangeQuery(post_states=(PostState.OVERDUE,))
    else:
        query = ChangeQuery(
            statuses=(Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS),
            starts_from=now - timedelta(hours=1),
            starts_before=now + timedelta(days=UPCOMING_DAYS),
        )
    return replace(query, limit=limit, offset=offset)
