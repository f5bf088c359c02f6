"""Requests already acted on, keyed by the request (see bot/replay.py), with their answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storage.models import ProcessedRequestRow
from storage.sql import insert_ignoring_conflicts


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: str


class ProcessedRequests:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(self, key: str, *, now: datetime, prune_before: datetime | None = None) -> bool:
        """True for the first request with this key (it goes on to act), False for a repeat.
        One INSERT … ON CONFLICT DO NOTHING: of two racing requests exactly one wins."""
        async with self._sessions() as session, session.begin():
            if prune_before is not None:
                await session.execute(
                    sa.delete(ProcessedRequestRow).where(col(ProcessedRequestRow.received_at) < prune_before)
                )
            inserted = await session.execute(
                insert_ignoring_conflicts(session, ProcessedRequestRow, {"key": key, "received_at": now})
            )
        return bool(inserted.rowcount == 1)  # type: ignore[attr-defined]

    async def finish(self, key: str, answer: StoredAnswer) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(ProcessedRequestRow)
                .where(col(ProcessedRequestRow.key) == key)
                .values(status=answer.status, content_type=answer.content_type, body=answer.body)
            )

    async def answer(self, key: str) -> StoredAnswer | None:
        """The first request's answer, or None while it is still being handled."""
        async with self._sessions() as session:
            row = await session.get(ProcessedRequestRow, key)
        if row is None or row.status is None:
            return None
        return StoredAnswer(status=row.status, content_type=row.content_type or "", body=row.body or "")
