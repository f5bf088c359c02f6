"""SQL implementation of the domain's ChangeRepository, plus the outbox it writes into."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.calendar_policy import Freeze
from domain.intents import Intent
from domain.model import (
    AuditEntry,
    Change,
    PostState,
)
from domain.service import ChangeQuery, DueNotice, NoticeSettlement
from storage.audit_chain import insert_audit
from storage.batching import Batcher
from storage.changes import SqlChanges, count_matching, list_matching
from storage.models import (
    CardCopyRow,
    ChangeRow,
    FeedTokenRow,
    FreezeRow,
    HomeViewerRow,
    JobRunRow,
    NoticeRow,
    ReviewRow,
    UtcDateTime,
    feed_token_hash,
)
from storage.reports import changes_in_period
from storage.sql import FREEZE_TABLE, audit_values, bad_row, enqueue, insert_ignoring_conflicts


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


class SqlChangeRepository(SqlChanges):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self._schedule_reads = Batcher(self._read_schedules, retry_alone=bad_row)

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

    # --- calendar feed tokens and App Home viewers --------------------------------
    async def feed_token(self, *, now: datetime, rotate: bool = False) -> str | None:
        """A new ICS feed token if none is live or `rotate` (old ones stop working), else None:
        only its hash is stored, so a token is shown once, when made."""
        async with self._sessions() as session, session.begin():
            current = (
                (await session.execute(sa.select(FeedTokenRow).where(col(FeedTokenRow.revoked_at).is_(None))))
                .scalars()
                .all()
            )
            if current and not rotate:
                return None
            for row in current:
                row.revoked_at = now
            token = secrets.token_urlsafe(32)
            session.add(FeedTokenRow(token=feed_token_hash(token), created_at=now))
            return token

    async def feed_token_valid(self, token: str) -> bool:
        if not token:
            return False
        async with self._reads() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(col(FeedTokenRow.token)).where(col(FeedTokenRow.revoked_at).is_(None))
                    )
                )
                .scalars()
                .all()
            )
        digest = feed_token_hash(token)
        return any(hmac.compare_digest(digest, row) for row in rows)

    async def home_opened(self, *, user: str, now: datetime, intents: Sequence[Intent]) -> None:
        async with self._sessions() as session, session.begin():
            values = {"user_id": user, "opened_at": now}
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = builder(HomeViewerRow).values(**values)
            await session.execute(
                statement.on_conflict_do_update(index_elements=["user_id"], set_={"opened_at": now})
            )
            await enqueue(session, intents, now)

    async def home_viewers(self, users: Sequence[str]) -> list[str]:
        if not users:
            return []
        async with self._reads() as session:
            rows = await session.execute(
                sa.select(col(HomeViewerRow.user_id)).where(col(HomeViewerRow.user_id).in_(list(users)))
            )
            return sorted(rows.scalars().all())

    async def changes_with_history(self, *, start: datetime, end: datetime) -> list[Change]:
        """Changes whose window starts in [start, end), with approvals and audit (for reports)."""
        return await changes_in_period(self._sessions, start=start, end=end)

    # --- reviews ------------------------------------------------------------------
    async def submit_review(
        self,
        *,
        change_id: str,
        user: str,
        answers: dict[str, Any],
        now: datetime,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        """Store the review once; False if there is no open request for it."""
        async with self._sessions() as session, session.begin():
            updated = await session.execute(
                sa.update(ReviewRow)
                .where(col(ReviewRow.change_id) == change_id, col(ReviewRow.submitted_at).is_(None))
                .values(submitted_at=now, submitted_by=user, answers=answers)
            )
            if updated.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return False
            await insert_audit(session, [audit_values(change_id, entry) for entry in audit])
            await enqueue(session, intents, now)
        return True

    async def review_counts(self, *, start: datetime, end: datetime) -> tuple[int, int]:
        """(due in the period, written on time): the review-compliance figure."""
        async with self._reads() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(ReviewRow).where(
                            col(ReviewRow.due_at) >= start, col(ReviewRow.due_at) < end
                        )
                    )
                )
                .scalars()
                .all()
            )
        on_time = sum(1 for r in rows if r.submitted_at is not None and r.submitted_at <= r.due_at)
        return len(rows), on_time

    async def overdue_reviews(self, *, now: datetime) -> list[str]:
        async with self._reads() as session:
            rows = await session.execute(
                sa.select(col(ReviewRow.change_id))
                .where(col(ReviewRow.submitted_at).is_(None), col(ReviewRow.due_at) < now)
                .order_by(col(ReviewRow.due_at))
            )
            return list(rows.scalars().all())

    async def caused_incidents(self, ids: Sequence[str]) -> list[str]:
        if not ids:
            return []
        async with self._reads() as session:
            rows = await session.execute(
                sa.select(col(ChangeRow.id)).where(
                    col(ChangeRow.id).in_(list(ids)), col(ChangeRow.caused_incident).is_not(None)
                )
            )
            return list(rows.scalars().all())

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
        self, *, reason: str, user: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Freeze | None:
        """None when a freeze is already on."""
        async with self._sessions() as session, session.begin():
            active = await session.execute(
                sa.select(col(FreezeRow.id)).where(col(FreezeRow.ended_at).is_(None)).with_for_update()
                if session.get_bind().dialect.name == "postgresql"
                else sa.select(col(FreezeRow.id)).where(col(FreezeRow.ended_at).is_(None))
            )
            if active.first() is not None:
                return None
            row = FreezeRow(reason=reason, started_by=user, started_at=now)
            session.add(row)
            await session.flush()
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
            return Freeze(row.id or 0, reason, user, now)

    async def end_freeze(
        self, *, user: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Freeze | None:
        """None when no freeze is on."""
        async with self._sessions() as session, session.begin():
            row = (
                (await session.execute(sa.select(FreezeRow).where(col(FreezeRow.ended_at).is_(None))))
                .scalars()
                .first()
            )
            if row is None:
                return None
            row.ended_at, row.ended_by = now, user
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
            return Freeze(row.id or 0, row.reason, row.started_by, row.started_at, now)

    async def notices(self, change_id: str) -> list[NoticeRow]:
        async with self._reads() as session:
            result = await session.execute(
                sa.select(NoticeRow).where(col(NoticeRow.change_id) == change_id).order_by(col(NoticeRow.id))
            )
            return list(result.scalars().all())

    async def claim_job_run(
        self, *, job: str, period: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> bool:
        """True for exactly one caller per (job, period); its audit and intents are stored
        in the same transaction as the claim."""
        async with self._sessions() as session, session.begin():
            inserted = await session.execute(
                insert_ignoring_conflicts(session, JobRunRow, {"job": job, "period": period, "ran_at": now})
            )
            if not inserted.rowcount:  # type: ignore[attr-defined]
                return False
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
            return True

    async def record_first_job_run(self, *, job: str, period: str, now: datetime) -> bool:
        """Replicas starting together on a new database may all get True: none posts."""
        async with self._sessions() as session, session.begin():
            ran = await session.scalar(sa.select(sa.literal(1)).where(col(JobRunRow.job) == job).limit(1))
            if ran is not None:
                return False
            await session.execute(
                insert_ignoring_conflicts(session, JobRunRow, {"job": job, "period": period, "ran_at": now})
            )
            return True

    async def add_intents(self, intents: Sequence[Intent], *, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await enqueue(session, intents, now)

    async def append_audit(self, change_id: str | None, entry: AuditEntry) -> None:
        async with self._sessions() as session, session.begin():
            await insert_audit(session, [audit_values(change_id, entry)])

    async def list_changes(self, query: ChangeQuery) -> list[Change]:
        async with self._reads() as session:
            return await list_matching(session, query)

    async def count_changes(self, query: ChangeQuery) -> int:
        async with self._reads() as session:
            return await count_matching(session, query)

    async def card_copies(self, change_id: str) -> list[CardCopyRow]:
        async with self._reads() as session:
            result = await session.execute(
                sa.select(CardCopyRow)
                .where(CardCopyRow.change_id == change_id)  # type: ignore[arg-type]
                .order_by(CardCopyRow.id)  # type: ignore[arg-type]
            )
            return list(result.scalars().all())

    async def remember_card(self, *, change_id: str, channel: str, ts: str, user_id: str | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert_ignoring_conflicts(
                    session,
                    CardCopyRow,
                    {"change_id": change_id, "channel": channel, "ts": ts, "user_id": user_id},
                )
            )

    async def has_card(self, *, change_id: str, target: str) -> bool:
        """A card already went to this channel or user (a redelivered intent must not repost)."""
        async with self._reads() as session:
            found = await session.execute(
                sa.select(col(CardCopyRow.id)).where(
                    CardCopyRow.change_id == change_id,  # type: ignore[arg-type]
                    sa.or_(col(CardCopyRow.channel) == target, col(CardCopyRow.user_id) == target),
                )
            )
            return found.first() is not None


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


async def _freezes(session: AsyncSession, *, start: datetime, end: datetime) -> list[Freeze]:
    table = FREEZE_TABLE
    rows = await session.execute(
        sa.select(table.c.id, table.c.reason, table.c.started_by, table.c.started_at, table.c.ended_at)
        .where(table.c.started_at < end, sa.or_(table.c.ended_at.is_(None), table.c.ended_at > start))
        .order_by(table.c.started_at)
    )
    return [Freeze(r.id or 0, r.reason, r.started_by, r.started_at, r.ended_at) for r in rows]
