"""Timeline notices: the next due time, claiming due ones under a lease, settling them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.intents import Intent
from domain.model import (
    PostState,
)
from domain.ports import DueNotice, NoticeSettlement
from storage.audit_chain import insert_audit
from storage.models import (
    ChangeRow,
    NoticeRow,
    UtcDateTime,
)
from storage.sql import SqlStore, audit_values, enqueue


class SqlNotices(SqlStore):
    # --- timeline notices -------------------------------------------------------
    async def next_notice_due(self) -> datetime | None:
        earliest = sa.type_coerce(sa.func.min(NoticeRow.due_at), UtcDateTime())
        async with self._reads() as session:
            found = await session.execute(
                sa.select(earliest).where(NoticeRow.state == "pending")  # type: ignore[arg-type]
            )
            return found.scalar_one_or_none()

    async def claim_due_notices(self, *, now: datetime, limit: int, lease: timedelta) -> list[DueNotice]:
        table = NoticeRow.__table__  # type: ignore[attr-defined]
        due = sa.or_(
            sa.and_(table.c.state == "pending", table.c.due_at <= now),
            sa.and_(table.c.state == "sending", table.c.lease_until < now),
        )
        async with self._sessions() as session, session.begin():
            candidates = sa.select(table.c.id).where(due).order_by(table.c.due_at, table.c.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True, of=table)
            rows = (
                await session.execute(
                    sa.update(table)
                    .where(table.c.id.in_(candidates.scalar_subquery()))
                    .values(state="sending", lease_until=now + lease)
                    .returning(table.c.id, table.c.change_id, table.c.key, table.c.due_at, table.c.expires_at)
                )
            ).all()
        return sorted(
            (DueNotice(row.id, row.change_id, row.key, row.due_at, row.expires_at) for row in rows),
            key=lambda notice: (notice.due_at, notice.id),
        )

    async def settle_notices(self, settlements: Sequence[NoticeSettlement], *, now: datetime) -> int:
        if not settlements:
            return 0
        settled = 0
        audit_rows: list[dict[str, Any]] = []
        intents: list[Intent] = []
        async with self._sessions() as session, session.begin():
            for settlement in settlements:
                if settlement.post_state is None:
                    done = await _settle_notice_row(session, settlement, now)
                else:
                    # Two guarded writes that stand or fall together.
                    savepoint = await session.begin_nested()
                    done = await _move_post_state(session, settlement, now) and await _settle_notice_row(
                        session, settlement, now
                    )
                    if done:
                        await savepoint.commit()
                    else:
                        await savepoint.rollback()
                if done:
                    settled += 1
                    audit_rows += [audit_values(settlement.change_id, entry) for entry in settlement.audit]
                    intents += settlement.intents
            await insert_audit(session, audit_rows)
            await enqueue(session, intents, now)
        return settled

    async def notices(self, change_id: str) -> list[NoticeRow]:
        async with self._reads() as session:
            result = await session.execute(
                sa.select(NoticeRow).where(col(NoticeRow.change_id) == change_id).order_by(col(NoticeRow.id))
            )
            return list(result.scalars().all())


async def _settle_notice_row(session: AsyncSession, settlement: NoticeSettlement, now: datetime) -> bool:
    """The notice is still ours (claimed, lease not taken over): mark it done."""
    updated = await session.execute(
        sa.update(NoticeRow)
        .where(col(NoticeRow.id) == settlement.notice_id, col(NoticeRow.state) == "sending")
        .values(
            state="sent" if settlement.sent else "skipped",
            late=settlement.late,
            note=settlement.note,
            done_at=now,
            lease_until=None,
        )
    )
    return bool(updated.rowcount == 1)  # type: ignore[attr-defined]


async def _move_post_state(session: AsyncSession, settlement: NoticeSettlement, now: datetime) -> bool:
    """Only while post-approval is still pending: a decision meanwhile wins."""
    assert settlement.post_state is not None
    moved = await session.execute(
        sa.update(ChangeRow)
        .where(
            col(ChangeRow.id) == settlement.change_id, col(ChangeRow.post_state) == PostState.PENDING.value
        )
        .values(post_state=settlement.post_state.value, version=ChangeRow.version + 1, updated_at=now)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]
