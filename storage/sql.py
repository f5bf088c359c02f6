"""Statements the storage modules share: conflict-tolerant inserts, outbox, audit and notice rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.intents import Intent
from domain.messages import message_payload
from domain.model import (
    AuditEntry,
)
from domain.timeline import PlannedNotice
from storage.database import read_only
from storage.models import (
    ApprovalRow,
    AuditRow,
    ChangeRow,
    FreezeRow,
    NoticeRow,
    OutboxRow,
    ReviewRow,
)


def insert_ignoring_conflicts(session: AsyncSession, table: Any, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return builder(table).values(**values).on_conflict_do_nothing()


def outbox_values(intent: Intent, now: datetime) -> dict[str, Any]:
    return {
        "kind": intent.kind.value,
        "change_id": intent.change_id,
        "channel": intent.channel,
        "payload": message_payload(intent.message),
        "dedupe_key": intent.dedupe_key,
        "state": "pending",
        "attempts": 0,
        "recovered": False,
        "due_at": max(now, intent.not_before) if intent.not_before is not None else now,
        "created_at": now,
    }


async def enqueue(session: AsyncSession, intents: Sequence[Intent], now: datetime) -> None:
    await insert_outbox(session, [outbox_values(intent, now) for intent in intents])


async def insert_outbox(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One batched INSERT; a row whose dedupe key is already queued is skipped."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(builder(OUTBOX_TABLE).on_conflict_do_nothing(), list(rows))


def audit_values(change_id: str | None, entry: AuditEntry) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "actor": entry.actor,
        "action": entry.action.value,
        "at": entry.at,
        "details": entry.details,
    }


# Core tables on the hot paths: executemany inserts and plain row reads, no ORM bookkeeping.
CHANGE_TABLE: sa.Table = ChangeRow.__table__  # type: ignore[attr-defined]
AUDIT_TABLE: sa.Table = AuditRow.__table__  # type: ignore[attr-defined]
OUTBOX_TABLE: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
NOTICE_TABLE: sa.Table = NoticeRow.__table__  # type: ignore[attr-defined]
APPROVAL_TABLE: sa.Table = ApprovalRow.__table__  # type: ignore[attr-defined]
REVIEW_TABLE: sa.Table = ReviewRow.__table__  # type: ignore[attr-defined]
FREEZE_TABLE: sa.Table = FreezeRow.__table__  # type: ignore[attr-defined]


def bad_row(error: BaseException) -> bool:
    """A batch that failed on its data is worth retrying item by item; one that lost its
    connection may have committed, and writing it again could store CRs twice."""
    return isinstance(error, IntegrityError | DataError)


async def add_notices(
    session: AsyncSession, change_id: str, notices: Sequence[PlannedNotice], now: datetime
) -> None:
    await insert_notices(session, [notice_values(change_id, notice, now) for notice in notices])


def notice_values(change_id: str, notice: PlannedNotice, now: datetime) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "key": notice.key,
        "due_at": notice.due_at,
        "expires_at": notice.expires_at,
        "state": "pending",
        "late": False,
        "created_at": now,
    }


async def insert_notices(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(NOTICE_TABLE), list(rows))


class SqlStore:
    """What every part of the repository shares: `_sessions` to write, `_reads` to read
    (a replica's read-only sessions where configured)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._reads = read_only(sessions)
