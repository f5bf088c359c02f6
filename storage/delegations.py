"""Delegations: an approver's approvals handed to another member while they are away."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col

from domain.delegation import Delegation
from domain.intents import Intent
from domain.model import AuditEntry
from storage.audit_chain import insert_audit
from storage.models import DelegationRow
from storage.sql import SqlStore, audit_values, enqueue


def _in_force(now: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        col(DelegationRow.ended_at).is_(None),
        col(DelegationRow.starts_at) <= now,
        col(DelegationRow.until) > now,
    ]


def _delegation(row: DelegationRow) -> Delegation:
    return Delegation(row.delegator, row.delegate, row.starts_at, row.until)


class SqlDelegations(SqlStore):
    async def delegations(self, *, now: datetime) -> list[Delegation]:
        async with self._reads() as session:
            rows = await session.execute(
                sa.select(DelegationRow).where(*_in_force(now)).order_by(col(DelegationRow.id))
            )
            return [_delegation(row) for row in rows.scalars().all()]

    async def start_delegation(
        self, delegation: Delegation, *, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(DelegationRow)
                .where(col(DelegationRow.delegator) == delegation.delegator, *_in_force(now))
                .values(ended_at=now)
            )
            session.add(
                DelegationRow(
                    delegator=delegation.delegator,
                    delegate=delegation.delegate,
                    starts_at=delegation.starts_at,
                    until=delegation.until,
                )
            )
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)

    async def end_delegation(
        self, *, delegator: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Delegation | None:
        async with self._sessions() as session, session.begin():
            ended = (
                await session.execute(
                    sa.update(DelegationRow)
                    .where(col(DelegationRow.delegator) == delegator, *_in_force(now))
                    .values(ended_at=now)
                    .returning(
                        col(DelegationRow.delegator),
                        col(DelegationRow.delegate),
                        col(DelegationRow.starts_at),
                        col(DelegationRow.until),
                    )
                )
            ).all()
            if not ended:
                return None
            await insert_audit(session, [audit_values(None, entry) for entry in audit])
            await enqueue(session, intents, now)
        last = ended[-1]
        return Delegation(last.delegator, last.delegate, last.starts_at, last.until)
