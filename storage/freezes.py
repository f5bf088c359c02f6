"""Change freezes, and the schedule context a new window is checked against (group-read)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.calendar_policy import Freeze
from domain.intents import Intent
from domain.model import (
    SYSTEM_ACTOR,
    AuditEntry,
    Change,
)
from domain.ports import ChangeQuery
from storage.audit_chain import insert_audit
from storage.batching import Batcher
from storage.changes import list_matching
from storage.models import (
    FreezeRow,
)
from storage.sql import FREEZE_TABLE, SqlStore, audit_values, bad_row, enqueue


@dataclass(frozen=True)
class _ScheduleRead:
    start: datetime
    end: datetime
    others: ChangeQuery


def _unwindowed(query: ChangeQuery) -> ChangeQuery:
    return replace(query, starts_before=None, ends_after=None)


def _latest(moments: Sequence[datetime | None]) -> datetime | None:
    """The latest bound, None (no bound) if any is None."""
    return None if None in moments else max(m for m in moments if m is not None)


def _earliest(moments: Sequence[datetime | None]) -> datetime | None:
    return None if None in moments else min(m for m in moments if m is not None)


def _in_window(change: Change, query: ChangeQuery) -> bool:
    return (query.starts_before is None or change.draft.starts_at < query.starts_before) and (
        query.ends_after is None or change.draft.ends_at > query.ends_after
    )


def _overlapping_freezes(freezes: Sequence[Freeze], start: datetime, end: datetime) -> list[Freeze]:
    return [f for f in freezes if f.started_at < end and (f.ended_at is None or f.ended_at > start)]


class SqlFreezes(SqlStore):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self._schedule_reads = Batcher(self._read_schedules, retry_alone=bad_row)

    # --- freezes -----------------------------------------------------------------
    async def freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        """Freezes overlapping [start, end), open-ended ones included."""
        async with self._reads() as session:
            return await _freezes(session, start=start, end=end)

    async def schedule_context(
        self, *, start: datetime, end: datetime, others: ChangeQuery
    ) -> tuple[list[Freeze], list[Change]]:
        """What a new window is checked against (freezes, the CRs it may conflict with),
        in one read; concurrent calls share it."""
        return await self._schedule_reads(_ScheduleRead(start, end, others))

    async def _read_schedules(
        self, reads: Sequence[_ScheduleRead]
    ) -> list[tuple[list[Freeze], list[Change]]]:
        """One query per table over the span of all the windows; each caller's rows are
        picked out here. Where a span's answer is cut by its limit, each caller of it
        gets its own query, so nobody misses a CR."""
        async with self._reads() as session:
            freezes = await _freezes(
                session, start=min(r.start for r in reads), end=max(r.end for r in reads)
            )
            spans: dict[ChangeQuery, list[ChangeQuery]] = {}
            for read in reads:
                spans.setdefault(_unwindowed(read.others), []).append(read.others)
            found: dict[ChangeQuery, list[Change] | None] = {}
            for key, queries in spans.items():
                span = replace(
                    key,
                    starts_before=_latest([q.starts_before for q in queries]),
                    ends_after=_earliest([q.ends_after for q in queries]),
                )
                changes = await list_matching(session, span)
                found[key] = changes if len(queries) == 1 or len(changes) < span.limit else None
            results = []
            for read in reads:
                within = found[_unwindowed(read.others)]
                changes = (
                    [c for c in within if _in_window(c, read.others)]
                    if within is not None
                    else await list_matching(session, read.others)
                )
                results.append((_overlapping_freezes(freezes, read.start, read.end), changes))
            return results

    async def start_freeze(
        self,
        *,
        reason: str,
        user: str,
        now: datetime,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
        until: datetime | None = None,
    ) -> Freeze | None:
        """None when a freeze is already on. A freeze with an end stores it as its `ended_at`
        (so every read sees it end then) and no `ended_by` until the end is announced."""
        async with self._sessions() as session, session.begin():
            on = sa.select(col(FreezeRow.id)).where(_on(now))
            if session.get_bind().dialect.name == "postgresql":
                on = on.with_for_update()
            if (await session.execute(on)).first() is not None:
                return None
            row = FreezeRow(reason=reason, started_by=user, started_at=now, ended_at=until)
            session.add(row)
            await session.flush()
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
            return Freeze(row.id or 0, reason, user, now, until)

    async def end_freeze(
        self, *, user: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Freeze | None:
        """None when no freeze is on."""
        async with self._sessions() as session, session.begin():
            row = (await session.execute(sa.select(FreezeRow).where(_on(now)))).scalars().first()
            if row is None:
                return None
            row.ended_at, row.ended_by = now, user
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
            return Freeze(row.id or 0, row.reason, row.started_by, row.started_at, now)

    async def close_due_freezes(
        self, *, now: datetime, closing: Callable[[Freeze], tuple[list[AuditEntry], list[Intent]]]
    ) -> list[Freeze]:
        """Mark the freezes whose declared end has come as ended by changebot, each once:
        the UPDATE … RETURNING hands a row to one replica only."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    sa.update(FREEZE_TABLE)
                    .where(
                        FREEZE_TABLE.c.ended_by.is_(None),
                        FREEZE_TABLE.c.ended_at.is_not(None),
                        FREEZE_TABLE.c.ended_at <= now,
                    )
                    .values(ended_by=SYSTEM_ACTOR)
                    .returning(
                        FREEZE_TABLE.c.id,
                        FREEZE_TABLE.c.reason,
                        FREEZE_TABLE.c.started_by,
                        FREEZE_TABLE.c.started_at,
                        FREEZE_TABLE.c.ended_at,
                    )
                )
            ).all()
            ended = [Freeze(r.id or 0, r.reason, r.started_by, r.started_at, r.ended_at) for r in rows]
            for freeze in sorted(ended, key=lambda f: f.id):
                audit, intents = closing(freeze)
                await insert_audit(session, [audit_values(None, entry) for entry in audit])
                await enqueue(session, intents, now)
            return ended


def _on(now: datetime) -> sa.ColumnElement[bool]:
    """A freeze on at `now`: until lifted, or its end still ahead."""
    return sa.or_(col(FreezeRow.ended_at).is_(None), col(FreezeRow.ended_at) > now)


async def _freezes(session: AsyncSession, *, start: datetime, end: datetime) -> list[Freeze]:
    table = FREEZE_TABLE
    rows = await session.execute(
        sa.select(table.c.id, table.c.reason, table.c.started_by, table.c.started_at, table.c.ended_at)
        .where(table.c.started_at < end, sa.or_(table.c.ended_at.is_(None), table.c.ended_at > start))
        .order_by(table.c.started_at)
    )
    return [Freeze(r.id or 0, r.reason, r.started_by, r.started_at, r.ended_at) for r in rows]
