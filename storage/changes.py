"""Change requests: create (group-committed, gap-free numbers), read, list, count, update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from domain.intents import Intent
from domain.model import (
    CARD_AUDIT_ACTIONS,
    ApprovalEntry,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    Review,
    format_change_id,
)
from domain.ports import ChangeQuery, ChangeUpdate
from domain.timeline import OUTLIVE_THE_WINDOW, PlannedNotice
from storage.audit_chain import insert_audit
from storage.batching import Batcher
from storage.mapping import approved_at, numbered, steps_json, to_change
from storage.models import (
    ApprovalRow,
    ChangeRow,
    ChangeSequence,
    NoticeRow,
    ReviewRow,
)
from storage.sql import (
    APPROVAL_TABLE,
    AUDIT_TABLE,
    CHANGE_TABLE,
    REVIEW_TABLE,
    SqlStore,
    add_notices,
    audit_values,
    bad_row,
    enqueue,
    insert_ignoring_conflicts,
    insert_notices,
    insert_outbox,
    notice_values,
    outbox_values,
)


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
        **_draft_values(draft),
        "risk": change.risk.value,
        "requester": change.requester,
        "status": change.status.value,
        "approved_at": approved_at(change),
        "severity": draft.severity,
        "incident_ref": draft.incident_ref,
        "source_kind": draft.source.kind if draft.source else None,
        "source_url": draft.source.url if draft.source else None,
        "source_ref": draft.source.ref if draft.source else None,
        "post_state": change.post_state.value if change.post_state else None,
        "post_due_at": change.post_due_at,
        "post_steps": steps_json(change.post_steps) if change.post_steps else None,
        "conflicts": list(change.conflicts) or None,
        "approval_due_at": change.approval_due_at,
        "version": 1,
        "steps": steps_json(change.steps),
        "created_at": change.created_at,
        "updated_at": change.created_at,
    }


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


class SqlChanges(SqlStore):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self._creates = Batcher(self._create_changes, retry_alone=bad_row)
        self._change_reads = Batcher(self._read_changes, retry_alone=bad_row)

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
            await session.execute(sa.insert(CHANGE_TABLE), rows)
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
        return [numbered(row["id"], c.change, audit=c.audit) for row, c in zip(rows, creations, strict=True)]

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
            rows = (await session.execute(sa.select(CHANGE_TABLE).where(CHANGE_TABLE.c.id.in_(ids)))).all()
            approvals = await session.execute(
                sa.select(APPROVAL_TABLE)
                .where(APPROVAL_TABLE.c.change_id.in_(ids))
                .order_by(APPROVAL_TABLE.c.id)
            )
            audit_query = sa.select(AUDIT_TABLE).where(AUDIT_TABLE.c.change_id.in_(ids))
            if not history:
                audit_query = audit_query.where(
                    AUDIT_TABLE.c.action.in_(sorted(a.value for a in CARD_AUDIT_ACTIONS))
                )
            audit = await session.execute(audit_query.order_by(AUDIT_TABLE.c.id))
            reviews = await session.execute(sa.select(REVIEW_TABLE).where(REVIEW_TABLE.c.change_id.in_(ids)))
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
        try:
            async with self._sessions() as session, session.begin():
                updated = await session.execute(
                    sa.update(ChangeRow)
                    .where(
                        col(ChangeRow.id) == change_id,
                        col(ChangeRow.version) == expected_version,
                    )
                    .values(**_row_values(update))
                )
                if updated.rowcount != 1:  # type: ignore[attr-defined]
                    await session.rollback()
                    return False
                await _write_alongside(session, change_id, update)
                await insert_audit(session, [audit_values(change_id, entry) for entry in audit])
                await enqueue(session, intents, update.at)
        except IntegrityError:
            return False
        return True


def _row_values(update: ChangeUpdate) -> dict[str, Any]:
    """The CR row's new columns: every field the update sets, and the next version."""
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
    if update.draft is not None:
        values.update(_draft_values(update.draft))
    if update.risk is not None:
        values["risk"] = update.risk.value
    for name in UPDATABLE:
        value = getattr(update, name)
        if value is not None:
            values[name] = value
    return values


async def _write_alongside(session: AsyncSession, change_id: str, update: ChangeUpdate) -> None:
    """The other tables an update touches, in the CR row's transaction (after its version check)."""
    if update.void_approvals:  # what they approved changed; the audit keeps them
        await _void_approvals(session, change_id, keep_approved_at=update.approved_at is not None)
    if update.approval is not None:
        await _insert_approval(session, change_id, update.approval)
    if update.replace_notices is not None or update.drop_notices:
        await _cancel_window_notices(session, change_id, update.at)
    if update.request_review is not None:
        await _request_review(session, change_id, update.request_review)
    await add_notices(session, change_id, update.replace_notices or (), update.at)
    await add_notices(session, change_id, update.add_notices, update.at)


async def _insert_approval(session: AsyncSession, change_id: str, entry: ApprovalEntry) -> None:
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


async def _cancel_window_notices(session: AsyncSession, change_id: str, at: datetime) -> None:
    await session.execute(
        sa.update(NoticeRow)
        .where(
            col(NoticeRow.change_id) == change_id,
            col(NoticeRow.state) == "pending",
            *(~col(NoticeRow.key).startswith(prefix) for prefix in OUTLIVE_THE_WINDOW),
        )
        .values(state="cancelled", done_at=at)
    )


async def _request_review(session: AsyncSession, change_id: str, review: Review) -> None:
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


async def _void_approvals(session: AsyncSession, change_id: str, *, keep_approved_at: bool = False) -> None:
    """Back to waiting for approval: no pre-approvals, no approval time (unless the same
    update approves it anew: an edited CR that needs no sign-off any more)."""
    if not keep_approved_at:
        await session.execute(
            sa.update(ChangeRow).where(col(ChangeRow.id) == change_id).values(approved_at=None)
        )
    await session.execute(
        sa.delete(ApprovalRow).where(col(ApprovalRow.change_id) == change_id, col(ApprovalRow.phase) == "pre")
    )


def _draft_values(draft: ChangeDraft) -> dict[str, Any]:
    """The form's columns: written at filing, rewritten by an edit (the pipeline source,
    severity and incident stay as filed)."""
    return {
        "title": draft.title,
        "category": draft.category.value,
        "impact": draft.impact.value,
        "likelihood": draft.likelihood.value,
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
        "implementer": draft.implementer,
        "links": list(draft.links) or None,
        "success_criteria": draft.success_criteria or None,
        "dependencies": draft.dependencies or None,
        "stakeholders": list(draft.stakeholders) or None,
        "rollback_minutes": draft.rollback_minutes,
        "rollback_triggers": draft.rollback_triggers or None,
    }


UPDATABLE = (
    "starts_at",
    "ends_at",
    "approved_at",
    "started_at",
    "finished_at",
    "outcome_notes",
    "approval_due_at",
)


def _matching(statement: Any, query: ChangeQuery) -> Any:
    """The query's filters, shared by the list and its COUNT so the total is the list's."""
    table = CHANGE_TABLE
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


async def count_matching(session: AsyncSession, query: ChangeQuery) -> int:
    statement = _matching(sa.select(sa.func.count()).select_from(CHANGE_TABLE), query)
    return int((await session.execute(statement)).scalar_one())


async def list_matching(session: AsyncSession, query: ChangeQuery) -> list[Change]:
    table = CHANGE_TABLE
    statement = _matching(sa.select(table), query)
    if query.requester and not query.starts_from:
        statement = statement.order_by(table.c.created_at.desc(), table.c.id.desc())
    else:
        statement = statement.order_by(table.c.starts_at, table.c.id)  # id: pages never overlap
    rows = (await session.execute(statement.limit(query.limit).offset(query.offset or None))).all()
    if not rows or not query.with_approvals:
        return [to_change(row, [], []) for row in rows]
    approvals = await session.execute(
        sa.select(APPROVAL_TABLE)
        .where(APPROVAL_TABLE.c.change_id.in_([row.id for row in rows]))
        .order_by(APPROVAL_TABLE.c.id)
    )
    by_change: dict[str, list[Any]] = {}
    for approval in approvals:
        by_change.setdefault(approval.change_id, []).append(approval)
    return [to_change(row, by_change.get(row.id, []), []) for row in rows]
