"""Read-only queries behind the monthly report, the audit export and the Prometheus endpoint.

Everything here reads; nothing writes. Periods are half-open [start, end) in tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.enums import Category, Decision, Status
from domain.model import AuditAction, Change
from storage.database import read_only
from storage.mapping import to_change
from storage.models import ApprovalRow, AuditRow, ChangeRow, NoticeRow, OutboxRow
from storage.outbox import DEAD, PENDING, SENDING, SENT

Sessions = async_sessionmaker[AsyncSession]
ID_CHUNK = 500  # ids per IN (…): far below SQLite's and asyncpg's parameter limits
OUTBOX_STATES = (PENDING, SENDING, SENT, DEAD)


class AuditRecord(TypedDict):
    id: int
    at: datetime
    change_id: str | None
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + ID_CHUNK] for i in range(0, len(ids), ID_CHUNK)]


async def changes_in_period(sessions: Sessions, *, start: datetime, end: datetime) -> list[Change]:
    """Changes whose window starts in [start, end), with approvals and audit trail: three
    kinds of query in total (rows, then approvals and audit batched by id), never one per change.
    The audit is needed to tell how a closed change ended."""
    async with read_only(sessions)() as session:
        rows = (
            (
                await session.execute(
                    sa.select(ChangeRow)
                    .where(col(ChangeRow.starts_at) >= start, col(ChangeRow.starts_at) < end)
                    .order_by(col(ChangeRow.starts_at), col(ChangeRow.id))
                )
            )
            .scalars()
            .all()
        )
        approvals: dict[str, list[ApprovalRow]] = {}
        audit: dict[str, list[AuditRow]] = {}
        for chunk in _chunks([row.id for row in rows]):
            for approval in (
                await session.execute(
                    sa.select(ApprovalRow)
                    .where(col(ApprovalRow.change_id).in_(chunk))
                    .order_by(col(ApprovalRow.id))
                )
            ).scalars():
                approvals.setdefault(approval.change_id, []).append(approval)
            for event in (
                await session.execute(
                    sa.select(AuditRow).where(col(AuditRow.change_id).in_(chunk)).order_by(col(AuditRow.id))
                )
            ).scalars():
                assert event.change_id is not None
                audit.setdefault(event.change_id, []).append(event)
    return [to_change(row, approvals.get(row.id, []), audit.get(row.id, [])) for row in rows]


async def iter_audit_events(
    sessions: Sessions, *, since: datetime, until: datetime, batch: int = 1000
) -> AsyncIterator[AuditRecord]:
    """Audit events with `at` in [since, until) ordered by (at, id), read in keyset pages
    so an export of years of history never holds it all in memory or one transaction."""
    last: tuple[datetime, int] | None = None
    while True:
        statement = sa.select(AuditRow).where(col(AuditRow.at) >= since, col(AuditRow.at) < until)
        if last is not None:
            statement = statement.where(
                sa.or_(
                    col(AuditRow.at) > last[0],
                    sa.and_(col(AuditRow.at) == last[0], col(AuditRow.id) > last[1]),
                )
            )
        statement = statement.order_by(col(AuditRow.at), col(AuditRow.id)).limit(batch)
        async with read_only(sessions)() as session:
            rows = (await session.execute(statement)).scalars().all()
        for row in rows:
            assert row.id is not None
            yield AuditRecord(
                id=row.id,
                at=row.at,
                change_id=row.change_id,
                actor=row.actor,
                action=row.action,
                details=dict(row.details or {}),
                prev_hash=row.prev_hash,
                hash=row.hash,
            )
        if len(rows) < batch:
            return
        tail = rows[-1]
        assert tail.id is not None
        last = (tail.at, tail.id)


async def audit_events(sessions: Sessions, *, since: datetime, until: datetime) -> list[AuditRecord]:
    return [record async for record in iter_audit_events(sessions, since=since, until=until)]


async def status_counts(sessions: Sessions) -> dict[tuple[Category, Status], int]:
    """Every (category, status) pair, zero-filled so dashboards never see a series vanish."""
    counts = {(category, status): 0 for category in Category for status in Status}
    async with read_only(sessions)() as session:
        rows = (
            await session.execute(
                sa.select(col(ChangeRow.category), col(ChangeRow.status), sa.func.count()).group_by(
                    col(ChangeRow.category), col(ChangeRow.status)
                )
            )
        ).all()
    for category, status, count in rows:
        counts[(Category(category), Status(status))] = int(count)
    return counts


async def rollback_count(sessions: Sessions) -> int:
    """Changes ever rolled back, including ones closed since: read from the audit trail,
    because a closed change's status no longer says it."""
    async with read_only(sessions)() as session:
        found = await session.execute(
            sa.select(sa.func.count(sa.distinct(col(AuditRow.change_id)))).where(
                col(AuditRow.action) == AuditAction.ROLLED_BACK.value
            )
        )
        return int(found.scalar_one())


async def outcome_counts(sessions: Sessions) -> dict[Status, int]:
    """How many changes ended completed, failed or rolled back, each by its latest outcome
    (failed then rolled back counts once, as rolled back; closing keeps the outcome)."""
    outcome_actions = {
        AuditAction.COMPLETED.value: Status.COMPLETED,
        AuditAction.FAILED.value: Status.FAILED,
        AuditAction.ROLLED_BACK.value: Status.ROLLED_BACK,
    }
    async with read_only(sessions)() as session:
        rows = (
            await session.execute(
                sa.select(col(AuditRow.change_id), col(AuditRow.action))
                .where(col(AuditRow.action).in_(list(outcome_actions)), col(AuditRow.change_id).is_not(None))
                .order_by(col(AuditRow.at), col(AuditRow.id))
            )
        ).all()
    latest = {change_id: outcome_actions[action] for change_id, action in rows}
    counts = dict.fromkeys((Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK), 0)
    for outcome in latest.values():
        counts[outcome] += 1
    return counts


async def outbox_depth(sessions: Sessions) -> dict[str, int]:
    """Outbox rows per state (pending, sending, sent, dead), zero-filled."""
    depth = dict.fromkeys(OUTBOX_STATES, 0)
    async with read_only(sessions)() as session:
        rows = (
            await session.execute(
                sa.select(col(OutboxRow.state), sa.func.count()).group_by(col(OutboxRow.state))
            )
        ).all()
    for state, count in rows:
        depth[str(state)] = int(count)
    return depth


async def notice_lags(sessions: Sessions, *, since: datetime, until: datetime) -> list[float]:
    """Seconds from due to sent for timeline notices sent in [since, until); early is 0."""
    async with read_only(sessions)() as session:
        rows = (
            await session.execute(
                sa.select(col(NoticeRow.due_at), col(NoticeRow.done_at)).where(
                    col(NoticeRow.state) == "sent",
                    col(NoticeRow.done_at) >= since,
                    col(NoticeRow.done_at) < until,
                )
            )
        ).all()
    return [_seconds(due_at, done_at) for due_at, done_at in rows if done_at is not None]


async def approval_latencies(sessions: Sessions, *, since: datetime | None = None) -> list[float]:
    """Seconds from filing to approval for changes that people approved (auto-approved
    standard changes and emergencies would only pull the figure to zero)."""
    approved_by_people = (
        sa.select(col(ApprovalRow.id))
        .where(
            col(ApprovalRow.change_id) == col(ChangeRow.id),
            col(ApprovalRow.phase) == "pre",
            col(ApprovalRow.decision) == Decision.APPROVE.value,
        )
        .exists()
    )
    statement = sa.select(col(ChangeRow.created_at), col(ChangeRow.approved_at)).where(
        col(ChangeRow.approved_at).is_not(None), approved_by_people
    )
    if since is not None:
        statement = statement.where(col(ChangeRow.approved_at) >= since)
    async with read_only(sessions)() as session:
        rows = (await session.execute(statement)).all()
    return [_seconds(created_at, approved_at) for created_at, approved_at in rows if approved_at is not None]


def _seconds(earlier: datetime, later: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())
