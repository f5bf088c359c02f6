"""SQL implementation of the domain's ChangeRepository, plus the outbox it writes into."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.calendar_policy import Freeze
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.intents import Intent
from domain.model import (
    CARD_AUDIT_ACTIONS,
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    Phase,
    PostState,
    Review,
    StepSnapshot,
    format_change_id,
)
from domain.service import ChangeQuery, ChangeUpdate, DueNotice, NoticeSettlement
from domain.timeline import PlannedNotice
from storage.audit_chain import insert_audit
from storage.batching import Batcher
from storage.database import read_only
from storage.models import (
    ApprovalRow,
    AuditRow,
    CardCopyRow,
    ChangeRow,
    ChangeSequence,
    FeedTokenRow,
    FreezeRow,
    HomeViewerRow,
    JobRunRow,
    NoticeRow,
    OutboxRow,
    ReviewRow,
    UtcDateTime,
    feed_token_hash,
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
        "payload": intent.payload,
        "dedupe_key": intent.dedupe_key,
        "state": "pending",
        "attempts": 0,
        "recovered": False,
        "due_at": now,
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
    await session.execute(builder(_OUTBOX_TABLE).on_conflict_do_nothing(), list(rows))


def bump_sequence(session: AsyncSession, year: int, count: int = 1) -> Any:
    """Take the year's next `count` CR numbers in one statement (insert-or-increment,
    RETURNING the last of them)."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ChangeSequence.__table__  # type: ignore[attr-defined]
    return (
        builder(table)
        .values(year=year, last=count)
        .on_conflict_do_update(index_elements=[table.c.year], set_={"last": table.c.last + count})
        .returning(table.c.last)
    )


def audit_values(change_id: str | None, entry: AuditEntry) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "actor": entry.actor,
        "action": entry.action.value,
        "at": entry.at,
        "details": entry.details,
    }


# Core tables on the hot paths: executemany inserts and plain row reads, no ORM bookkeeping.
_CHANGE_TABLE: sa.Table = ChangeRow.__table__  # type: ignore[attr-defined]
_AUDIT_TABLE: sa.Table = AuditRow.__table__  # type: ignore[attr-defined]
_OUTBOX_TABLE: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
_NOTICE_TABLE: sa.Table = NoticeRow.__table__  # type: ignore[attr-defined]
_APPROVAL_TABLE: sa.Table = ApprovalRow.__table__  # type: ignore[attr-defined]
_REVIEW_TABLE: sa.Table = ReviewRow.__table__  # type: ignore[attr-defined]
_FREEZE_TABLE: sa.Table = FreezeRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Creation:
    change: NewChange
    audit: tuple[AuditEntry, ...]
    intents: Callable[[str], Sequence[Intent]]
    notices: tuple[PlannedNotice, ...]


def _change_values(change: NewChange) -> dict[str, Any]:
    draft = change.draft
    return {
        "year": change.created_at.year,
        "title": draft.title,
        "category": draft.category.value,
        "impact": draft.impact.value,
        "likelihood": draft.likelihood.value,
        "risk": change.risk.value,
        "services": list(draft.services),
        "starts_at": draft.starts_at,
        "ends_at": draft.ends_at,
        "description": draft.description,
        "justification": draft.justification,
        "implementation_plan": draft.implementation_plan,
        "rollback_plan": draft.rollback_plan,
        "test_plan": draft.test_plan,
        "downtime_minutes": draft.downtime_minutes,
        "catalog_id": draft.catalog_id,
        "requester": change.requester,
        "implementer": draft.implementer,
        "status": change.status.value,
        "approved_at": _approved_at(change),
        "severity": draft.severity,
        "incident_ref": draft.incident_ref,
        "post_state": change.post_state.value if change.post_state else None,
        "post_due_at": change.post_due_at,
        "post_steps": steps_json(change.post_steps) if change.post_steps else None,
        "conflicts": list(change.conflicts) or None,
        "version": 1,
        "steps": steps_json(change.steps),
        "created_at": change.created_at,
        "updated_at": change.created_at,
    }


def _approved_at(change: NewChange) -> datetime | None:
    return change.created_at if change.status is Status.APPROVED else None


def _created(change_id: str, creation: _Creation) -> Change:
    change = creation.change
    return Change(
        id=change_id,
        draft=change.draft,
        risk=change.risk,
        status=change.status,
        requester=change.requester,
        version=1,
        created_at=change.created_at,
        updated_at=change.created_at,
        steps=change.steps,
        audit=creation.audit,
        approved_at=_approved_at(change),
        post_state=change.post_state,
        post_due_at=change.post_due_at,
        post_steps=change.post_steps,
        conflicts=change.conflicts,
    )


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


def _bad_row(error: BaseException) -> bool:
    """A batch that failed on its data is worth retrying item by item; one that lost its
    connection may have committed, and writing it again could store CRs twice."""
    return isinstance(error, IntegrityError | DataError)


class SqlChangeRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._reads = read_only(sessions)
        self._creates = Batcher(self._create_changes, retry_alone=_bad_row)
        self._schedule_reads = Batcher(self._read_schedules, retry_alone=_bad_row)
        self._change_reads = Batcher(self._read_changes, retry_alone=_bad_row)

    async def create_change(
        self,
        change: NewChange,
        *,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
        notices: Sequence[PlannedNotice] = (),
    ) -> Change:
        """Store a new CR with its audit entries, outbox rows and notices. Concurrent
        calls share one transaction (group commit); each CR still gets the next gap-free
        number of its year."""
        return await self._creates(_Creation(change, tuple(audit), intents, tuple(notices)))

    async def _create_changes(self, creations: Sequence[_Creation]) -> list[Change]:
        rows = [_change_values(c.change) for c in creations]
        # The year's counter row is locked from the bump to the commit, so that stretch is
        # one statement per table for the whole batch, the numbers taken in arrival order.
        async with self._sessions() as session, session.begin():
            by_year: dict[int, list[int]] = {}
            for index, creation in enumerate(creations):
                by_year.setdefault(creation.change.created_at.year, []).append(index)
            for year, indexes in by_year.items():
                last = (await session.execute(bump_sequence(session, year, len(indexes)))).scalar_one()
                for offset, index in enumerate(indexes):
                    sequence = last - len(indexes) + 1 + offset
                    rows[index].update(id=format_change_id(year, sequence), sequence=sequence)
            await session.execute(sa.insert(_CHANGE_TABLE), rows)
            audit = [
                audit_values(row["id"], entry)
                for row, c in zip(rows, creations, strict=True)
                for entry in c.audit
            ]
            await insert_audit(session, audit, new_chains=True)
            await insert_outbox(
                session,
                [
                    outbox_values(intent, c.change.created_at)
                    for row, c in zip(rows, creations, strict=True)
                    for intent in c.intents(row["id"])
                ],
            )
            await insert_notices(
                session,
                [
                    notice_values(row["id"], notice, c.change.created_at)
                    for row, c in zip(rows, creations, strict=True)
                    for notice in c.notices
                ],
            )
        return [_created(row["id"], c) for row, c in zip(rows, creations, strict=True)]

    async def get_change(self, change_id: str, *, history: bool = True) -> Change | None:
        return (await self.get_changes([change_id], history=history)).get(change_id)

    async def get_changes(self, change_ids: Sequence[str], *, history: bool = False) -> dict[str, Change]:
        """The CRs by id; `history=False` loads only the audit entries a card shows.
        Concurrent calls (parallel deliveries, clicks) share one read."""
        if not change_ids:
            return {}
        return await self._change_reads((tuple(change_ids), history))

    async def _read_changes(self, reads: Sequence[tuple[tuple[str, ...], bool]]) -> list[dict[str, Change]]:
        loaded = {
            history: await self._load_changes({i for ids, h in reads if h is history for i in ids}, history)
            for history in {h for _, h in reads}
        }
        return [{i: loaded[history][i] for i in ids if i in loaded[history]} for ids, history in reads]

    async def _load_changes(self, change_ids: set[str], history: bool) -> dict[str, Change]:
        ids = sorted(change_ids)
        # Core rows, not ORM objects: every card render reads a CR, and identity-map
        # bookkeeping for rows that are only read costs more than the query.
        async with self._reads() as session:
            rows = (await session.execute(sa.select(_CHANGE_TABLE).where(_CHANGE_TABLE.c.id.in_(ids)))).all()
            approvals = await session.execute(
                sa.select(_APPROVAL_TABLE)
                .where(_APPROVAL_TABLE.c.change_id.in_(ids))
                .order_by(_APPROVAL_TABLE.c.id)
            )
            audit_query = sa.select(_AUDIT_TABLE).where(_AUDIT_TABLE.c.change_id.in_(ids))
            if not history:
                audit_query = audit_query.where(
                    _AUDIT_TABLE.c.action.in_(sorted(a.value for a in CARD_AUDIT_ACTIONS))
                )
            audit = await session.execute(audit_query.order_by(_AUDIT_TABLE.c.id))
            reviews = await session.execute(
                sa.select(_REVIEW_TABLE).where(_REVIEW_TABLE.c.change_id.in_(ids))
            )
            by_approvals: dict[str, list[Any]] = {}
            for approval in approvals:
                by_approvals.setdefault(approval.change_id, []).append(approval)
            by_audit: dict[str, list[Any]] = {}
            for entry in audit:
                by_audit.setdefault(str(entry.change_id), []).append(entry)
            by_review = {review.change_id: review for review in reviews}
        return {
            row.id: to_change(
                row, by_approvals.get(row.id, []), by_audit.get(row.id, []), by_review.get(row.id)
            )
            for row in rows
        }

    async def update_change(
        self,
        *,
        change_id: str,
        expected_version: int,
        update: ChangeUpdate,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        values: dict[str, Any] = {"version": ChangeRow.version + 1, "updated_at": update.at}
        if update.status is not None:
            values["status"] = update.status.value
        if update.post_state is not None:
            values["post_state"] = update.post_state.value
        if update.steps is not None:
            values["steps"] = steps_json(update.steps)
        if update.conflicts is not None:
            values["conflicts"] = list(update.conflicts)
        if update.caused_incident is not None:
            values["caused_incident"] = update.caused_incident
        for name in UPDATABLE:
            value = getattr(update, name)
            if value is not None:
                values[name] = value
        try:
            async with self._sessions() as session, session.begin():
                updated = await session.execute(
                    sa.update(ChangeRow)
                    .where(
                        col(ChangeRow.id) == change_id,
                        col(ChangeRow.version) == expected_version,
                    )
                    .values(**values)
                )
                if updated.rowcount != 1:  # type: ignore[attr-defined]
                    await session.rollback()
                    return False
                if update.void_approvals:  # the window they approved moved; the audit keeps them
                    await _void_approvals(session, change_id)
                if update.approval is not None:
                    entry = update.approval
                    await session.execute(
                        sa.insert(ApprovalRow).values(
                            change_id=change_id,
                            user_id=entry.user,
                            decision=entry.decision.value,
                            step_index=entry.step_index,
                            reason=entry.reason,
                            decided_at=entry.at,
                            phase=entry.phase.value,
                        )
                    )
                if update.replace_notices is not None or update.drop_notices:
                    await session.execute(
                        sa.update(NoticeRow)
                        .where(
                            col(NoticeRow.change_id) == change_id,
                            col(NoticeRow.state) == "pending",
                            # the post-approval and review chases outlive the change window
                            ~col(NoticeRow.key).startswith("post_"),
                            ~col(NoticeRow.key).startswith("review_"),
                        )
                        .values(state="cancelled", done_at=update.at)
                    )
                if update.request_review is not None:
                    review = update.request_review
                    await session.execute(
                        insert_ignoring_conflicts(
                            session,
                            ReviewRow,
                            {
                                "change_id": change_id,
                                "requested_at": review.requested_at,
                                "due_at": review.due_at,
                                "reason": review.reason,
                            },
                        )
                    )
                await add_notices(session, change_id, update.replace_notices or (), update.at)
                await add_notices(session, change_id, update.add_notices, update.at)
                await insert_audit(session, [audit_values(change_id, entry) for entry in audit])
                await enqueue(session, intents, update.at)
        except IntegrityError:
            return False
        return True

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
        from storage.reports import changes_in_period

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
                changes = await _list_changes(session, span)
                found[key] = changes if len(queries) == 1 or len(changes) < span.limit else None
            results = []
            for read in reads:
                within = found[_unwindowed(read.others)]
                changes = (
                    [c for c in within if _in_window(c, read.others)]
                    if within is not None
                    else await _list_changes(session, read.others)
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
            return await _list_changes(session, query)

    async def count_changes(self, query: ChangeQuery) -> int:
        async with self._reads() as session:
            return await _count_changes(session, query)

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


async def _void_approvals(session: AsyncSession, change_id: str) -> None:
    """Back to waiting for approval: no pre-approvals, no approval time."""
    await session.execute(sa.update(ChangeRow).where(col(ChangeRow.id) == change_id).values(approved_at=None))
    await session.execute(
        sa.delete(ApprovalRow).where(col(ApprovalRow.change_id) == change_id, col(ApprovalRow.phase) == "pre")
    )


UPDATABLE = ("starts_at", "ends_at", "approved_at", "started_at", "finished_at", "outcome_notes")


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


def _matching(statement: Any, query: ChangeQuery) -> Any:
    """The query's filters, shared by the list and its COUNT so the total is the list's."""
    table = _CHANGE_TABLE
    if query.requester:
        statement = statement.where(table.c.requester == query.requester)
    if query.statuses:
        statement = statement.where(table.c.status.in_([s.value for s in query.statuses]))
    if query.starts_from:
        statement = statement.where(table.c.starts_at >= query.starts_from)
    if query.post_states:
        statement = statement.where(table.c.post_state.in_([s.value for s in query.post_states]))
    if query.ends_after:
        statement = statement.where(table.c.ends_at > query.ends_after)
    if query.ends_before:
        statement = statement.where(table.c.ends_at < query.ends_before)
    if query.starts_before:
        statement = statement.where(table.c.starts_at < query.starts_before)
    if query.risks:
        statement = statement.where(table.c.risk.in_([r.value for r in query.risks]))
    return statement


async def _count_changes(session: AsyncSession, query: ChangeQuery) -> int:
    statement = _matching(sa.select(sa.func.count()).select_from(_CHANGE_TABLE), query)
    return int((await session.execute(statement)).scalar_one())


async def _list_changes(session: AsyncSession, query: ChangeQuery) -> list[Change]:
    table = _CHANGE_TABLE
    statement = _matching(sa.select(table), query)
    if query.requester and not query.starts_from:
        statement = statement.order_by(table.c.created_at.desc(), table.c.id.desc())
    else:
        statement = statement.order_by(table.c.starts_at, table.c.id)  # id: pages never overlap
    rows = (await session.execute(statement.limit(query.limit).offset(query.offset or None))).all()
    if not rows or not query.with_approvals:
        return [to_change(row, [], []) for row in rows]
    approvals = await session.execute(
        sa.select(_APPROVAL_TABLE)
        .where(_APPROVAL_TABLE.c.change_id.in_([row.id for row in rows]))
        .order_by(_APPROVAL_TABLE.c.id)
    )
    by_change: dict[str, list[Any]] = {}
    for approval in approvals:
        by_change.setdefault(approval.change_id, []).append(approval)
    return [to_change(row, by_change.get(row.id, []), []) for row in rows]


async def _freezes(session: AsyncSession, *, start: datetime, end: datetime) -> list[Freeze]:
    table = _FREEZE_TABLE
    rows = await session.execute(
        sa.select(table.c.id, table.c.reason, table.c.started_by, table.c.started_at, table.c.ended_at)
        .where(table.c.started_at < end, sa.or_(table.c.ended_at.is_(None), table.c.ended_at > start))
        .order_by(table.c.started_at)
    )
    return [Freeze(r.id or 0, r.reason, r.started_by, r.started_at, r.ended_at) for r in rows]


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
        await session.execute(sa.insert(_NOTICE_TABLE), list(rows))


def steps_json(steps: Sequence[StepSnapshot]) -> list[dict[str, Any]]:
    return [
        {"role": s.role, "count": s.count, "members": list(s.members), "purpose": s.purpose} for s in steps
    ]


def steps_from(raw: Sequence[dict[str, Any]] | None) -> tuple[StepSnapshot, ...]:
    return tuple(
        StepSnapshot(
            role=s["role"], count=int(s["count"]), members=tuple(s["members"]), purpose=s.get("purpose", "")
        )
        for s in raw or ()
    )


def to_change(
    row: Any,
    approvals: Sequence[Any],
    audit: Sequence[Any],
    review: Any | None = None,
) -> Change:
    """A CR from its row and its approval, audit and review rows: ORM objects or Core
    rows of the same tables alike (both read by column name)."""
    entries = [
        ApprovalEntry(a.user_id, Decision(a.decision), a.step_index, a.decided_at, a.reason, Phase(a.phase))
        for a in approvals
    ]
    return Change(
        id=row.id,
        draft=ChangeDraft(
            title=row.title,
            category=Category(row.category),
            impact=Impact(row.impact),
            likelihood=Likelihood(row.likelihood),
            services=tuple(row.services),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            description=row.description,
            justification=row.justification,
            implementation_plan=row.implementation_plan,
            rollback_plan=row.rollback_plan,
            test_plan=row.test_plan,
            downtime_minutes=row.downtime_minutes,
            catalog_id=row.catalog_id,
            implementer=row.implementer,
            severity=row.severity,
            incident_ref=row.incident_ref,
        ),
        risk=Risk(row.risk),
        status=Status(row.status),
        requester=row.requester,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=steps_from(row.steps),
        approvals=tuple(e for e in entries if e.phase is Phase.PRE),
        post_approvals=tuple(e for e in entries if e.phase is Phase.POST),
        audit=tuple(AuditEntry(a.actor, AuditAction(a.action), a.at, a.details) for a in audit),
        approved_at=row.approved_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome_notes=row.outcome_notes,
        post_state=PostState(row.post_state) if row.post_state else None,
        post_due_at=row.post_due_at,
        post_steps=steps_from(row.post_steps),
        conflicts=tuple(row.conflicts or ()),
        caused_incident=row.caused_incident,
        review=Review(
            review.requested_at,
            review.due_at,
            review.reason,
            review.submitted_at,
            review.submitted_by,
            review.answers,
        )
        if review
        else None,
    )
