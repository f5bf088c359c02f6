"""Requests already acted on, keyed by the request (see bot/replay.py), with their answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.batching import Batcher
from storage.models import ProcessedRequestRow
from storage.sql import bad_row

PROCESSED_TABLE: sa.Table = ProcessedRequestRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class _Claim:
    key: str
    now: datetime
    prune_before: datetime | None


class ProcessedRequests:
    """Concurrent claims (a burst of form submissions) share one INSERT and one
    transaction, as concurrent CR creations do; so do the answers stored after them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._claims: Batcher[_Claim, bool] = Batcher(self._claim_all, retry_alone=bad_row)
        self._finishes: Batcher[tuple[str, StoredAnswer], None] = Batcher(
            self._finish_all, retry_alone=bad_row
        )

    async def claim(self, key: str, *, now: datetime, prune_before: datetime | None = None) -> bool:
        """True for the first request with this key (it goes on to act), False for a repeat.
        INSERT … ON CONFLICT DO NOTHING RETURNING: of two racing requests exactly one wins."""
        return await self._claims(_Claim(key, now, prune_before))

    async def _claim_all(self, claims: Sequence[_Claim]) -> list[bool]:
        table = PROCESSED_TABLE
        prune = [c.prune_before for c in claims if c.prune_before is not None]
        rows = {c.key: c.now for c in reversed(claims)}  # one row a key, the first one's time
        async with self._sessions() as session, session.begin():
            if prune:
                await session.execute(sa.delete(table).where(table.c.received_at < min(prune)))
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                builder(table)
                .values([{"key": key, "received_at": now} for key, now in rows.items()])
                .on_conflict_do_nothing()
                .returning(table.c.key)
            )
            inserted = set((await session.execute(statement)).scalars())
        firsts = []
        for claim in claims:  # a key twice in one batch: only its first request goes on
            firsts.append(claim.key in inserted)
            inserted.discard(claim.key)
        return firsts

    async def finish(self, key: str, answer: StoredAnswer) -> None:
        await self._finishes((key, answer))

    async def _finish_all(self, answers: Sequence[tuple[str, StoredAnswer]]) -> list[None]:
        table = PROCESSED_TABLE
        statement = (
            sa.update(table)
            .where(table.c.key == sa.bindparam("k"))
            .values(status=sa.bindparam("s"), content_type=sa.bindparam("t"), body=sa.bindparam("b"))
        )
        params = [{"k": k, "s": a.status, "t": a.content_type, "b": a.body} for k, a in answers]
        async with self._sessions() as session, session.begin():
            await session.execute(statement, params)
        return [None] * len(answers)

    async def answer(self, key: str) -> StoredAnswer | None:
        """The first request's answer, or None while it is still being handled."""
        async with self._sessions() as session:
            row = await session.get(ProcessedRequestRow, key)
        if row is None or row.status is None:
            return None
        return StoredAnswer(status=row.status, content_type=row.content_type or "", body=row.body or "")
