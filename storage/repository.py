"""SQL implementation of the domain's ChangeRepository, plus the outbox it writes into."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.intents import Intent
from domain.model import (
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    StepSnapshot,
    format_change_id,
)
from domain.service import ChangeQuery
from storage.models import ApprovalRow, AuditRow, CardCopyRow, ChangeRow, ChangeSequence, OutboxRow


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
    for intent in intents:
        await session.execute(insert_ignoring_conflicts(session, OutboxRow, outbox_values(intent, now)))


def audit_values(change_id: str | None, entry: AuditEntry) -> dict[str, Any]:
    return {
        "change_id": change_id,
        "actor": entry.actor,
        "action": entry.action.value,
        "at": entry.at,
        "details": entry.details,
    }


class SqlChangeRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_change(
        self,
        change: NewChange,
        *,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
    ) -> Change:
        year = change.created_at.year
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert_ignoring_conflicts(session, ChangeSequence, {"year": year, "last": 0})
            )
            sequence = (
                await session.execute(
                    sa.update(ChangeSequence)
                    .where(ChangeSequence.year == year)  # type: ignore[arg-type]
                    .values(last=ChangeSequence.last + 1)
                    .returning(col(ChangeSequence.last))
                )
            ).scalar_one()
            change_id = format_change_id(year, sequence)
            draft = change.draft
            session.add(
                ChangeRow(
                    id=change_id,
                    year=year,
                    sequence=sequence,
                    title=draft.title,
                    category=draft.category.value,
                    impact=draft.impact.value,
                    likelihood=draft.likelihood.value,
                    risk=change.risk.value,
                    services=list(draft.services),
                    starts_at=draft.starts_at,
                    ends_at=draft.ends_at,
                    description=draft.description,
                    justification=draft.justification,
                    implementation_plan=draft.implementation_plan,
                    rollback_plan=draft.rollback_plan,
                    test_plan=draft.test_plan,
                    downtime_minutes=draft.downtime_minutes,
                    catalog_id=draft.catalog_id,
                    requester=change.requester,
                    status=change.status.value,
                    version=1,
                    steps=[
                        {"role": s.role, "count": s.count, "members": list(s.members)} for s in change.steps
                    ],
                    created_at=change.created_at,
                    updated_at=change.created_at,
                )
            )
            await session.flush()
            for entry in audit:
                await session.execute(sa.insert(AuditRow).values(**audit_values(change_id, entry)))
            await enqueue(session, intents(change_id), change.created_at)
        found = await self.get_change(change_id)
        assert found is not None
        return found

    async def get_change(self, change_id: str) -> Change | None:
        async with self._sessions() as session:
            row = await session.get(ChangeRow, change_id)
            if row is None:
                return None
            approvals = (
                await session.execute(
                    sa.select(ApprovalRow)
                    .where(ApprovalRow.change_id == change_id)  # type: ignore[arg-type]
                    .order_by(ApprovalRow.id)  # type: ignore[arg-type]
                )
            ).scalars()
            audit = (
                await session.execute(
                    sa.select(AuditRow)
                    .where(AuditRow.change_id == change_id)  # type: ignore[arg-type]
                    .order_by(AuditRow.id)  # type: ignore[arg-type]
                )
            ).scalars()
            return to_change(row, list(approvals), list(audit))

    async def record_decision(
        self,
        *,
        change_id: str,
        expected_version: int,
        entry: ApprovalEntry,
        new_status: Status,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        try:
            async with self._sessions() as session, session.begin():
                updated = await session.execute(
                    sa.update(ChangeRow)
                    .where(
                        ChangeRow.id == change_id,  # type: ignore[arg-type]
                        ChangeRow.version == expected_version,  # type: ignore[arg-type]
                        ChangeRow.status == Status.PENDING_APPROVAL.value,  # type: ignore[arg-type]
                    )
                    .values(
                        version=ChangeRow.version + 1,
                        status=new_status.value,
                        updated_at=entry.at,
                    )
                )
                if updated.rowcount != 1:  # type: ignore[attr-defined]
                    await session.rollback()
                    return False
                await session.execute(
                    sa.insert(ApprovalRow).values(
                        change_id=change_id,
                        user_id=entry.user,
                        decision=entry.decision.value,
                        step_index=entry.step_index,
                        reason=entry.reason,
                        decided_at=entry.at,
                    )
                )
                for audit_entry in audit:
                    await session.execute(sa.insert(AuditRow).values(**audit_values(change_id, audit_entry)))
                await enqueue(session, intents, entry.at)
        except IntegrityError:
            return False
        return True

    async def append_audit(self, change_id: str, entry: AuditEntry) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(sa.insert(AuditRow).values(**audit_values(change_id, entry)))

    async def list_changes(self, query: ChangeQuery) -> list[Change]:
        statement = sa.select(ChangeRow)
        if query.requester:
            statement = statement.where(ChangeRow.requester == query.requester)  # type: ignore[arg-type]
        if query.statuses:
            statement = statement.where(
                ChangeRow.status.in_([s.value for s in query.statuses])  # type: ignore[attr-defined]
            )
        if query.starts_from:
            statement = statement.where(ChangeRow.starts_at >= query.starts_from)  # type: ignore[arg-type]
        if query.starts_before:
            statement = statement.where(ChangeRow.starts_at < query.starts_before)  # type: ignore[arg-type]
        if query.requester and not query.starts_from:
            statement = statement.order_by(ChangeRow.created_at.desc())  # type: ignore[attr-defined]
        else:
            statement = statement.order_by(ChangeRow.starts_at)  # type: ignore[arg-type]
        async with self._sessions() as session:
            rows = (await session.execute(statement.limit(query.limit))).scalars().all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            approvals = (
                (
                    await session.execute(
                        sa.select(ApprovalRow)
                        .where(ApprovalRow.change_id.in_(ids))  # type: ignore[attr-defined]
                        .order_by(ApprovalRow.id)  # type: ignore[arg-type]
                    )
                )
                .scalars()
                .all()
            )
        by_change: dict[str, list[ApprovalRow]] = {}
        for approval in approvals:
            by_change.setdefault(approval.change_id, []).append(approval)
        return [to_change(row, by_change.get(row.id, []), []) for row in rows]

    async def card_copies(self, change_id: str) -> list[CardCopyRow]:
        async with self._sessions() as session:
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
        async with self._sessions() as session:
            found = await session.execute(
                sa.select(col(CardCopyRow.id)).where(
                    CardCopyRow.change_id == change_id,  # type: ignore[arg-type]
                    sa.or_(col(CardCopyRow.channel) == target, col(CardCopyRow.user_id) == target),
                )
            )
            return found.first() is not None


def to_change(row: ChangeRow, approvals: Sequence[ApprovalRow], audit: Sequence[AuditRow]) -> Change:
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
        ),
        risk=Risk(row.risk),
        status=Status(row.status),
        requester=row.requester,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=tuple(
            StepSnapshot(role=s["role"], count=int(s["count"]), members=tuple(s["members"]))
            for s in row.steps
        ),
        approvals=tuple(
            ApprovalEntry(a.user_id, Decision(a.decision), a.step_index, a.decided_at, a.reason)
            for a in approvals
        ),
        audit=tuple(AuditEntry(a.actor, AuditAction(a.action), a.at, a.details) for a in audit),
    )
