"""SQL implementation of the domain's ChangeRepository, composed of one part per feature."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from domain.intents import Intent
from domain.model import (
    AuditEntry,
    Change,
)
from domain.ports import ChangeQuery
from storage.audit_chain import insert_audit
from storage.changes import SqlChanges, count_matching, list_matching
from storage.delegations import SqlDelegations
from storage.freezes import SqlFreezes
from storage.models import (
    CardCopyRow,
    ChangeRow,
    FeedTokenRow,
    HomeViewerRow,
    JobRunRow,
    ReviewRow,
    feed_token_hash,
)
from storage.notices import SqlNotices
from storage.reports import changes_in_period
from storage.sql import audit_values, enqueue, insert_ignoring_conflicts


class SqlChangeRepository(SqlChanges, SqlNotices, SqlFreezes, SqlDelegations):
    """The domain's ChangeRepository: the changes, notices, freezes and delegations parts,
    and the rest below."""

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
