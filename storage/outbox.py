"""Claiming and settling outbox rows. A claim is one atomic statement (PostgreSQL:
FOR UPDATE SKIP LOCKED; SQLite: UPDATE … RETURNING under BEGIN IMMEDIATE), so two
dispatchers never take the same row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.intents import Intent, IntentKind
from domain.messages import Message, parse_message
from storage.database import read_only
from storage.models import ChannelPaceRow, OutboxRow, UtcDateTime
from storage.sql import enqueue, insert_ignoring_conflicts

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
CARD_KINDS = ("post_card", "dm_card", "dm_approvers", "on_call")
REFRESH_KIND = "refresh_cards"
DEAD = "dead"
# Rows stored before these kinds' payloads were tagged with their message type.
UNTAGGED = {
    IntentKind.MESSAGE.value: "text",
    IntentKind.EPHEMERAL.value: "ephemeral",
    IntentKind.PD_CHANGE_EVENT.value: "change_event",
}


def row_message(row: OutboxRow) -> Message | None:
    """The typed message a row stored (None for kinds that say nothing, like a card).
    Raises `ValueError` for a payload of no known shape."""
    return parse_message(row.payload or {}, template=UNTAGGED.get(row.kind))


class OutboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, intents: Sequence[Intent], *, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await enqueue(session, intents, now)

    async def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxRow]:
        """Take up to `limit` due rows: pending ones, and ones whose sender died mid-lease.

        Rows of one CR go out in order where order matters: after the CR's cards are
        posted, and in order per channel.
        """
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        earlier = table.alias("earlier")
        due = sa.or_(
            sa.and_(table.c.state == PENDING, table.c.due_at <= now),
            sa.and_(table.c.state == SENDING, table.c.lease_until < now),
        )
        blocked = (
            sa.select(earlier.c.id)
            .where(
                earlier.c.change_id == table.c.change_id,
                earlier.c.id < table.c.id,
                earlier.c.state.in_([PENDING, SENDING]),
                # In order per channel (a thread reply goes after its card, which went to the
                # same channel); card updates wait for the cards. A slow channel holds up
                # nothing that goes elsewhere.
                sa.or_(
                    earlier.c.channel == table.c.channel,
                    sa.and_(table.c.kind == REFRESH_KIND, earlier.c.kind.in_(CARD_KINDS)),
                ),
            )
            .exists()
        )
        async with self._sessions() as session, session.begin():
            candidates = (
                sa.select(table.c.id)
                .where(due, sa.or_(table.c.change_id.is_(None), ~blocked))
                .order_by(table.c.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True, of=table)
            statement = (
                sa.update(table)
                .where(table.c.id.in_(candidates.scalar_subquery()))
                .values(
                    state=SENDING,
                    lease_until=now + lease,
                    attempts=table.c.attempts + 1,
                    # Taken over from a sender that died mid-lease: the message may be in
                    # Slack already. Sticky until sent, so a row paced or retried after the
                    # take-over is still checked against the channel history.
                    recovered=sa.or_(table.c.recovered, table.c.state == SENDING),
                )
                .returning(*table.c)
            )
            rows = (await session.execute(statement)).mappings().all()
        return sorted((OutboxRow.model_validate(dict(row)) for row in rows), key=lambda r: r.id or 0)

    async def reserve_slot(self, channel: str, *, now: datetime, pace: timedelta) -> datetime | None:
        """Take the channel's next send slot: None if it is free now (and is now taken for
        `pace`), else when it frees up. Atomic, so replicas share one pace per channel."""
        if pace <= timedelta(0):
            # Unpaced: only a Retry-After hold can stop us, and reading it needs no lock.
            async with read_only(self._sessions)() as session:
                row = await session.get(ChannelPaceRow, channel)
                return row.next_free if row is not None and row.next_free > now else None
        async with self._sessions() as session, session.begin():
            taken = await session.execute(
                sa.update(ChannelPaceRow)
                .where(col(ChannelPaceRow.channel) == channel, col(ChannelPaceRow.next_free) <= now)
                .values(next_free=now + pace)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return None
            inserted = await session.execute(
                insert_ignoring_conflicts(
                    session, ChannelPaceRow, {"channel": channel, "next_free": now + pace}
                )
            )
            if inserted.rowcount == 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(ChannelPaceRow, channel)
            return row.next_free if row is not None else now

    async def hold_channel(self, channel: str, *, until: datetime) -> None:
        """Slack said Retry-After: nobody sends to this channel before `until`."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(ChannelPaceRow)
                .where(col(ChannelPaceRow.channel) == channel, col(ChannelPaceRow.next_free) < until)
                .values(next_free=until)
            )

    async def mark_all_sent(self, sent: Sequence[tuple[int, datetime]]) -> None:
        """Settle many delivered rows in one transaction (row id, when it went out)."""
        if not sent:
            return
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(state=SENT, sent_at=sa.bindparam("at"), lease_until=None)
        )
        async with self._sessions() as session, session.begin():
            await session.execute(statement, [{"row_id": row_id, "at": at} for row_id, at in sent])

    async def retry_at(self, row_id: int, *, due_at: datetime, error: str) -> None:
        await self._settle(row_id, state=PENDING, due_at=due_at, lease_until=None, last_error=error[:2000])

    async def defer_paced(self, due: Sequence[tuple[OutboxRow, datetime]]) -> None:
        """Put claimed rows back, each due at its own time, in one transaction. Waiting
        for a channel's pace is not a failed attempt."""
        await self._put_back(due)

    async def release(self, rows: Sequence[OutboxRow]) -> None:
        """Put claimed rows back untouched, to be sent by whoever claims them next."""
        await self._put_back([(row, None) for row in rows])

    async def _put_back(self, due: Sequence[tuple[OutboxRow, datetime | None]]) -> None:
        """Only rows still under the lease this sender took: once a lease has run out,
        another sender may have claimed the row, and it is theirs."""
        if not due:
            return
        table = OutboxRow.__table__  # type: ignore[attr-defined]
        statement = (
            table.update()
            .where(
                table.c.id == sa.bindparam("row_id"),
                table.c.state == SENDING,
                table.c.lease_until == sa.bindparam("lease", type_=UtcDateTime()),
            )
            .values(
                state=PENDING,
                due_at=sa.func.coalesce(sa.bindparam("due", type_=UtcDateTime()), table.c.due_at),
                lease_until=None,
                attempts=table.c.attempts - 1,
            )
        )
        async with self._sessions() as session, session.begin():
            await session.execute(
                statement, [{"row_id": row.id, "lease": row.lease_until, "due": at} for row, at in due]
            )

    async def mark_dead(self, row_id: int, *, error: str) -> None:
        await self._settle(row_id, state=DEAD, lease_until=None, last_error=error[:2000])

    async def _settle(self, row_id: int, **values: object) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                sa.update(OutboxRow).where(OutboxRow.id == row_id).values(**values)  # type: ignore[arg-type]
            )

    async def counts(self) -> dict[str, int]:
        async with read_only(self._sessions)() as session:
            result = await session.execute(
                sa.select(col(OutboxRow.state), sa.func.count()).group_by(col(OutboxRow.state))
            )
            return {state: count for state, count in result.all()}

    async def next_due(self, *, after: datetime | None = None) -> datetime | None:
        """The earliest due time of a pending row (optionally only those after `after`)."""
        earliest = sa.type_coerce(sa.func.min(OutboxRow.due_at), UtcDateTime())
        statement = sa.select(earliest).where(OutboxRow.state == PENDING)  # type: ignore[arg-type]
        if after is not None:
            statement = statement.where(OutboxRow.due_at > after)  # type: ignore[arg-type]
        async with read_only(self._sessions)() as session:
            result = await session.execute(statement)
            return result.scalar_one_or_none()
