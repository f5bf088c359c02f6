"""Deployments waiting at a change's gate: one `gate_request` row per deployment and
environment, claimed under a lease (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's single
writer), answered with a version guard so each is answered once across replicas."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from domain.deployments import GateStatus, GateWait, NewGate, PendingGate
from domain.intents import Intent
from domain.model import AuditEntry
from storage.audit_chain import insert_audit
from storage.models import GateRequestRow, ProcessedEventRow
from storage.sql import SqlStore, audit_values, enqueue, insert_ignoring_conflicts

DELIVERY_PREFIX = "github:"  # delivery ids share the Slack events' table


class SqlGateRequests(SqlStore):
    async def first_delivery(self, delivery_id: str, *, now: datetime) -> bool:
        async with self._sessions() as session, session.begin():
            inserted = await session.execute(
                insert_ignoring_conflicts(
                    session,
                    ProcessedEventRow,
                    {"event_id": (DELIVERY_PREFIX + delivery_id)[:100], "received_at": now},
                )
            )
        return bool(inserted.rowcount == 1)  # type: ignore[attr-defined]

    async def forget_delivery(self, delivery_id: str) -> None:
        async with self._sessions() as session, session.begin():
            key = (DELIVERY_PREFIX + delivery_id)[:100]
            await session.execute(sa.delete(ProcessedEventRow).where(col(ProcessedEventRow.event_id) == key))

    async def open(
        self, gate: NewGate, *, now: datetime, lease: timedelta, intents: list[Intent]
    ) -> int | None:
        request = gate.request
        values: dict[str, Any] = {
            "change_id": gate.change_id,
            "kind": "github",
            "service": gate.service,
            "repository": request.repository[:200],
            "environment": request.environment[:200],
            "external_id": request.external_id[:200],
            "callback_url": request.callback_url[:500],
            "installation_id": request.installation_id,
            "status": GateStatus.PENDING.value,
            "comment": gate.comment,
            "created_at": now,
            "claimed_until": now + lease if gate.hold else None,
            "version": 1,
        }
        table = GateRequestRow.__table__  # type: ignore[attr-defined]
        async with self._sessions() as session, session.begin():
            inserted = await session.execute(
                insert_ignoring_conflicts(session, GateRequestRow, values).returning(table.c.id)
            )
            gate_id = inserted.scalar_one_or_none()
            if gate_id is not None:
                await enqueue(session, intents, now)
        return int(gate_id) if gate_id is not None else None

    async def filed(self, gate_id: int, *, change_id: str | None, comment: str | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(GateRequestRow)
                .where(
                    col(GateRequestRow.id) == gate_id, col(GateRequestRow.status) == GateStatus.PENDING.value
                )
                .values(
                    change_id=change_id,
                    comment=comment,
                    claimed_until=None,
                    version=GateRequestRow.version + 1,
                )
            )

    async def claim(self, *, now: datetime, lease: timedelta, limit: int) -> list[PendingGate]:
        table = GateRequestRow.__table__  # type: ignore[attr-defined]
        due = sa.and_(
            table.c.status == GateStatus.PENDING.value,
            sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
        )
        async with self._sessions() as session, session.begin():
            candidates = sa.select(table.c.id).where(due).order_by(table.c.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True, of=table)
            rows = (
                await session.execute(
                    sa.update(table)
                    .where(table.c.id.in_(candidates.scalar_subquery()), due)
                    .values(claimed_until=now + lease, version=table.c.version + 1)
                    .returning(*table.c)
                )
            ).all()
        return sorted((_pending(row) for row in rows), key=lambda gate: gate.id)

    async def release(self, gate: PendingGate, *, retry_at: datetime | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(GateRequestRow)
                .where(col(GateRequestRow.id) == gate.id, col(GateRequestRow.version) == gate.version)
                .values(claimed_until=retry_at)
            )

    async def finish(
        self,
        gate: PendingGate,
        *,
        status: GateStatus,
        comment: str,
        now: datetime,
        audit: AuditEntry | None,
        intents: list[Intent],
    ) -> bool:
        async with self._sessions() as session, session.begin():
            updated = await session.execute(
                sa.update(GateRequestRow)
                .where(
                    col(GateRequestRow.id) == gate.id,
                    col(GateRequestRow.version) == gate.version,
                    col(GateRequestRow.status) == GateStatus.PENDING.value,
                )
                .values(
                    status=status.value,
                    comment=comment,
                    answered_at=now,
                    claimed_until=None,
                    version=GateRequestRow.version + 1,
                )
            )
            if updated.rowcount != 1:  # type: ignore[attr-defined]
                return False
            if audit is not None:
                await insert_audit(session, [audit_values(gate.change_id, audit)])
            await enqueue(session, intents, now)
        return True

    async def waiting(self, change_id: str) -> list[GateWait]:
        async with self._reads() as session:
            rows = (
                await session.execute(
                    sa.select(GateRequestRow)
                    .where(
                        col(GateRequestRow.change_id) == change_id,
                        col(GateRequestRow.status) == GateStatus.PENDING.value,
                    )
                    .order_by(col(GateRequestRow.id))
                    .limit(20)
                )
            ).scalars()
            return [GateWait(row.repository, row.environment, row.created_at) for row in rows]

    async def change_for(self, external_id: str) -> str | None:
        async with self._reads() as session:
            found = await session.execute(
                sa.select(col(GateRequestRow.change_id)).where(col(GateRequestRow.external_id) == external_id)
            )
            return found.scalar_one_or_none()

    async def rows(self) -> list[GateRequestRow]:
        """Every stored request, oldest first: for the CLI and tests."""
        async with self._reads() as session:
            result = await session.execute(sa.select(GateRequestRow).order_by(col(GateRequestRow.id)))
            return list(result.scalars().all())


def _pending(row: Any) -> PendingGate:
    return PendingGate(
        id=row.id,
        change_id=row.change_id,
        service=row.service,
        repository=row.repository,
        environment=row.environment,
        callback_url=row.callback_url,
        installation_id=row.installation_id,
        version=row.version,
        comment=row.comment,
    )
