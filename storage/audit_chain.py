"""Tamper evidence for the audit trail.

Every entry stores `prev_hash` (the hash of the entry before it on its chain) and `hash`
(sha256 of its canonical content and prev_hash). There is one chain per CR and one for
entries of no CR. Appends to a chain are serialised: on SQLite every writing transaction
holds the database's write lock (BEGIN IMMEDIATE); on PostgreSQL the writer takes a
transaction-scoped advisory lock per chain before reading the chain's head. A unique
index on prev_hash makes a forked chain impossible even so. `verify_chains` recomputes
everything and names the first entry that does not fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.database import read_only
from storage.models import AuditRow

_TABLE: sa.Table = AuditRow.__table__  # type: ignore[attr-defined]
GENESIS = "changebot audit chain v1"


def chain_start(change_id: str | None) -> str:
    """The prev_hash of a chain's first entry: distinct per chain, so prev_hash is unique."""
    return hashlib.sha256(f"{GENESIS}|{change_id or ''}".encode()).hexdigest()


def canonical(
    *, change_id: str | None, at: datetime, actor: str, action: str, details: Any, prev_hash: str
) -> bytes:
    """The bytes an entry's hash covers: sorted-key compact JSON, the time as UTC ISO 8601."""
    return json.dumps(
        {
            "change_id": change_id,
            "at": at.astimezone(UTC).isoformat(),
            "actor": actor,
            "action": action,
            "details": details or {},
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode("utf-8")


def entry_hash(values: Mapping[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(
        canonical(
            change_id=values["change_id"],
            at=values["at"],
            actor=values["actor"],
            action=values["action"],
            details=values["details"],
            prev_hash=prev_hash,
        )
    ).hexdigest()


def _lock_key(change_id: str | None) -> str:
    return f"changebot audit chain|{change_id or ''}"


async def _heads(session: AsyncSession, change_ids: set[str | None]) -> dict[str | None, str]:
    heads: dict[str | None, str] = {}
    named = sorted(c for c in change_ids if c is not None)
    if named:
        last = (
            sa.select(sa.func.max(_TABLE.c.id))
            .where(_TABLE.c.change_id.in_(named))
            .group_by(_TABLE.c.change_id)
            .scalar_subquery()
        )
        rows = await session.execute(
            sa.select(_TABLE.c.change_id, _TABLE.c.hash).where(_TABLE.c.id.in_(last))
        )
        heads.update({row.change_id: row.hash for row in rows})
    if None in change_ids:
        found = await session.execute(
            sa.select(_TABLE.c.hash).where(_TABLE.c.change_id.is_(None)).order_by(_TABLE.c.id.desc()).limit(1)
        )
        head = found.scalar_one_or_none()
        if head is not None:
            heads[None] = head
    return heads


async def insert_audit(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, new_chains: bool = False
) -> None:
    """Append audit rows (audit_values dicts), chained, in the caller's transaction.
    `new_chains`: the rows belong to CRs created in this transaction, whose chains
    nobody else can see yet (no lock, no head to read)."""
    if not rows:
        return
    chains = {row["change_id"] for row in rows}
    heads: dict[str | None, str] = {}
    if not new_chains:
        if session.get_bind().dialect.name == "postgresql":
            for change_id in sorted(chains, key=lambda c: c or ""):
                await session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _lock_key(change_id)}
                )
        heads = await _heads(session, chains)
    chained = []
    for row in rows:
        prev = heads.get(row["change_id"]) or chain_start(row["change_id"])
        digest = entry_hash(row, prev)
        heads[row["change_id"]] = digest
        chained.append({**row, "prev_hash": prev, "hash": digest})
    await session.execute(sa.insert(_TABLE), chained)


@dataclass(frozen=True)
class BrokenEntry:
    id: int
    change_id: str | None
    problem: str


@dataclass(frozen=True)
class ChainReport:
    entries: int
    chains: int
    broken: BrokenEntry | None


def check_entry(row: Any, expected_prev: str, previous_id: int | None) -> str | None:
    """What is wrong with one entry, given the hash the entry before it on its chain has."""
    if not row.hash or not row.prev_hash:
        return "it has no hash"
    if entry_hash(row._mapping, row.prev_hash) != row.hash:
        return "its content does not match its hash (it was changed after it was written)"
    if row.prev_hash != expected_prev:
        if previous_id is None:
            return "it is not the start of its chain (entries before it were removed)"
        return (
            f"it does not follow entry {previous_id} on its chain "
            "(an entry between them was removed, or that entry was changed)"
        )
    return None


async def verify_chains(sessions: async_sessionmaker[AsyncSession], *, batch: int = 1000) -> ChainReport:
    """Walk every entry in id order (keyset pages), recompute its hash and its link."""
    async with read_only(sessions)() as session:
        if session.get_bind().dialect.name == "postgresql":
            # One snapshot for every page: with replicas writing, an id can commit after a
            # higher one; a page per snapshot could skip it and misreport its successor.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return await _walk(session, batch)


async def _walk(session: AsyncSession, batch: int) -> ChainReport:
    heads: dict[str | None, tuple[int, str]] = {}
    entries = 0
    last_id = 0
    columns = [_TABLE.c[name] for name in ("id", "change_id", "at", "actor", "action", "details")]
    statement = sa.select(*columns, _TABLE.c.prev_hash, _TABLE.c.hash).order_by(_TABLE.c.id).limit(batch)
    while True:
        rows = (await session.execute(statement.where(_TABLE.c.id > last_id))).all()
        for row in rows:
            entries += 1
            previous = heads.get(row.change_id)
            expected = previous[1] if previous else chain_start(row.change_id)
            problem = check_entry(row, expected, previous[0] if previous else None)
            if problem:
                return ChainReport(entries, len(heads), BrokenEntry(row.id, row.change_id, problem))
            heads[row.change_id] = (row.id, row.hash)
        if len(rows) < batch:
            return ChainReport(entries, len(heads), None)
        last_id = rows[-1].id
