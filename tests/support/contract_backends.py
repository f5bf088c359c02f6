"""The two ChangeRepository implementations the contract tests run on, and what those
tests read of each besides the port (the outbox, the whole audit trail, a CR's notices),
as plain tuples so the two can be compared."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.ports import ChangeRepository
from storage.models import AuditRow, OutboxRow
from storage.repository import SqlChangeRepository
from tests.support.memory_repository import MemoryChangeRepository

Row = tuple[Any, ...]


@dataclass
class Backend:
    name: str
    repo: ChangeRepository
    outbox: Callable[[], Awaitable[list[Row]]]  # (kind, channel, change_id, dedupe_key) by id
    audit: Callable[[], Awaitable[list[Row]]]  # (change_id, actor, action, details) by id
    notices: Callable[[str], Awaitable[list[Row]]]  # (key, state, due_at, expires_at, late, note, done_at)


def _notice_rows(notices: list[Any]) -> list[Row]:
    return [(n.key, n.state, n.due_at, n.expires_at, n.late, n.note, n.done_at) for n in notices]


def memory_backend() -> Backend:
    repo = MemoryChangeRepository()

    async def outbox() -> list[Row]:
        return [(e.kind, e.channel, e.change_id, e.intent.dedupe_key) for e in repo.outbox]

    async def audit() -> list[Row]:
        return [(r.change_id, r.entry.actor, r.entry.action.value, r.entry.details) for r in repo.audit_log]

    async def notices(change_id: str) -> list[Row]:
        return _notice_rows(await repo.notices(change_id))

    return Backend("memory", repo, outbox, audit, notices)


def sql_backend(sessions: async_sessionmaker[AsyncSession]) -> Backend:
    repo = SqlChangeRepository(sessions)

    async def outbox() -> list[Row]:
        async with sessions() as session:
            rows = (await session.execute(sa.select(OutboxRow).order_by(col(OutboxRow.id)))).scalars().all()
        return [(r.kind, r.channel, r.change_id, r.dedupe_key) for r in rows]

    async def audit() -> list[Row]:
        async with sessions() as session:
            rows = (await session.execute(sa.select(AuditRow).order_by(col(AuditRow.id)))).scalars().all()
        return [(r.change_id, r.actor, r.action, r.details) for r in rows]

    async def notices(change_id: str) -> list[Row]:
        return _notice_rows(await repo.notices(change_id))

    return Backend("sqlite", repo, outbox, audit, notices)


def copy_database(template: Path, target: Path) -> None:
    """A migrated SQLite file (with its WAL, if any) copied, so each test starts on a fresh schema."""
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copy(source, target.with_name(target.name + suffix))
