"""Outbox rows as an earlier version stored them, written straight into the table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.database import session_factory
from storage.models import OutboxRow
from tests.support.harness import Harness

StoredRow = tuple[str, str | None, str | None, dict[str, Any]]  # kind, change id, channel, payload


async def store_as_before(harness: Harness, rows: list[StoredRow]) -> None:
    """Rows written straight into the table, in the previous version's shapes."""
    now = harness.clock.now()
    values = [
        {
            "kind": kind,
            "change_id": change_id,
            "channel": channel,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "recovered": False,
            "due_at": now,
            "created_at": now,
        }
        for kind, change_id, channel, payload in rows
    ]
    async with session_factory(harness.bot.engine)() as session, session.begin():
        await session.execute(sa.insert(OutboxRow.__table__), values)  # type: ignore[attr-defined]
