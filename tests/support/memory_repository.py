"""ChangeRepository in memory: the SQL repository's semantics (version guard, CR numbers,
notices, outbox, audit, freezes, reviews, report reads) without a database, so the use
cases can be tested in milliseconds. tests/usecases/test_contract.py runs the same
scenarios against it and SqlChangeRepository to keep the two in step.

Each method runs without awaiting anything, so under asyncio it is as atomic as the SQL
transaction it mirrors. What storage keeps as JSON (audit details, review answers) goes
through json here too, so a value the database would refuse is refused here as well.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from domain.calendar_policy import Freeze
from domain.delegation import Delegation
from domain.intents import Intent
from domain.model import (
    CARD_AUDIT_ACTIONS,
    ApprovalEntry,
    AuditEntry,
    Change,
    NewChange,
    Phase,
    PostState,
    Review,
    format_change_id,
)
from domain.ports import ChangeQuery, ChangeUpdate, DueNotice, NoticeSettlement
from domain.timeline import OUTLIVE_THE_WINDOW, PlannedNotice
from storage.mapping import numbered

PENDING, SENDING, SENT, SKIPPED, CANCELLED = "pending", "sending", "sent", "skipped", "cancelled"


@dataclass
class StoredNotice:
    """A timeline notice with the attributes of storage's NoticeRow (what `notices()` returns)."""

    id: int
    change_id: str
    key: str
    due_at: datetime
    expires_at: datetime | None
    created_at: datetime
    state: str = PENDING
    lease_until: datetime | None = None
    late: bool = False
    done_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """One stored intent, in the order the outbox would send them."""

    id: int
    intent: Intent
    at: datetime

    @property
    def kind(self) -> str:
        return self.intent.kind.value

    @property
    def due_at(self) -> datetime:
        """When the outbox would send it: at once, or once the recipient's quiet hours end."""
        held = self.intent.not_before
        return max(self.at, held) if held is not None else self.at

    @property
    def channel(self) -> str | None:
        return self.intent.channel

    @property
    def change_id(self) -> str | None:
        return self.intent.change_id


@dataclass(frozen=True)
class AuditRecord:
    id: int
    change_id: str | None
    entry: AuditEntry


@dataclass
class _Approval:
    id: int
    change_id: str
    entry: ApprovalEntry


def _json(value: Any) -> Any:
    """A value as the JSON column gives it back (tuples become lists; non-JSON raises)."""
    return json.loads(json.dumps(value))


class MemoryChangeRepository:
    """The domain's ChangeRepository over dicts and lists. Besides the protocol it offers
    what a test inspects: `outbox` / `intents`, `audit_log`, and `notices(change_id)`."""

    def __init__(self) -> None:
        self._rows: dict[str, Change] = {}  # the CR rows: no approvals, audit or review inside
        self._sequences: dict[int, int] = {}
        self._approvals: list[_Approval] = []
        self._reviews: dict[str, Review] = {}
        self._notices: list[StoredNotice] = []
        self._freezes: list[Freeze] = []
        self._freezes_closed: set[int] = set()  # lifted, or their declared end announced
        self._job_runs: dict[tuple[str, str], datetime] = {}
        self._home_viewers: dict[str, datetime] = {}
        self._delegations: list[tuple[Delegation, datetime | None]] = []  # (delegation, ended_at)
        self.outbox: list[OutboxEntry] = []
        self.audit_log: list[AuditRecord] = []
        # One sequence per table, as the database numbers its rows (dedupe keys name notice ids).
        self._approval_ids, self._audit_ids = itertools.count(1), itertools.count(1)
        self._notice_ids, self._outbox_ids = itertools.count(1), itertools.count(1)

    # --- what tests inspect ------------------------------------------------------
    @property
    def intents(self) -> list[Intent]:
        return [entry.intent for entry in self.outbox]

    def intents_for(self, change_id: str) -> list[Intent]:
        return [entry.intent for entry in self.outbox if entry.change_id == change_id]

    async def notices(self, change_id: str) -> list[StoredNotice]:
        return [replace(n) for n in self._notices if n.change_id == change_id]

    async def home_viewers(self, users: Sequence[str]) -> list[str]:
        return sorted(u for u in users if u in self._home_viewers)

    # --- writes shared by every method ---------------------------------------------
    def _enqueue(self, intents: Iterable[Intent], now: datetime) -> None:
        """Like the outbox INSERT … ON CONFLICT DO NOTHING: a dedupe key already queued is skipped."""
        keys = {e.intent.dedupe_key for e in self.outbox if e.intent.dedupe_key is not None}
        for intent in intents:
            if intent.dedupe_key is not None:
                if intent.dedupe_key in keys:
                    continue
                keys.add(intent.dedupe_key)
            self.outbox.append(OutboxEntry(next(self._outbox_ids), intent, now))

    def _audit(self, change_id: str | None, entries: Iterable[AuditEntry]) -> None:
        for entry in entries:
            stored = replace(entry, details=_json(entry.details))
            self.audit_log.append(AuditRecord(next(self._audit_ids), change_id, stored))

    def _plan(self, change_id: str, notices: Iterable[PlannedNotice], now: datetime) -> None:
        for notice in notices:
            self._notices.append(
                StoredNotice(
                    next(self._notice_ids), change_id, notice.key, notice.due_at, notice.expires_at, now
                )
            )

    # --- changes -------------------------------------------------------------------
    async def create_change(
        self,
        change: NewChange,
        *,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
        notices: Sequence[PlannedNotice] = (),
    ) -> Change:
        """The year's next gap-free number, the CR, its audit, intents and notices at once."""
        year = change.created_at.year
        sequence = self._sequences.get(year, 0) + 1
        change_id = format_change_id(year, sequence)
        made = intents(change_id)  # all that can fail comes first: like a rolled-back
        for entry in audit:  # transaction, a failure leaves no trace (not even a number)
            _json(entry.details)
        self._sequences[year] = sequence
        row = numbered(change_id, change)
        self._rows[change_id] = row
        self._audit(change_id, audit)
        self._enqueue(made, change.created_at)
        self._plan(change_id, notices, change.created_at)
        return replace(row, audit=tuple(audit))

    async def get_change(self, change_id: str, *, history: bool = True) -> Change | None:
        return (await self.get_changes([change_id], history=history)).get(change_id)

    async def get_changes(self, change_ids: Sequence[str], *, history: bool = False) -> dict[str, Change]:
        """The CRs by id; `history=False` keeps only the audit entries a card shows."""
        return {
            i: self._full(self._rows[i], history=history) for i in sorted(set(change_ids)) if i in self._rows
        }

    def _full(self, row: Change, *, history: bool) -> Change:
        audit = tuple(
            r.entry
            for r in self.audit_log
            if r.change_id == row.id and (history or r.entry.action in CARD_AUDIT_ACTIONS)
        )
        return replace(self._with_approvals(row), audit=audit, review=self._reviews.get(row.id))

    def _with_approvals(self, row: Change) -> Change:
        entries = [a.entry for a in self._approvals if a.change_id == row.id]
        return replace(
            row,
            approvals=tuple(e for e in entries if e.phase is Phase.PRE),
            post_approvals=tuple(e for e in entries if e.phase is Phase.POST),
        )

    async def update_change(
        self,
        *,
        change_id: str,
        expected_version: int,
        update: ChangeUpdate,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        """Only at `expected_version`; a second decision by the same user in the same phase
        breaks storage's unique key and is refused the same way (False, nothing written)."""
        row = self._rows.get(change_id)
        if row is None or row.version != expected_version:
            return False
        approvals = [
            a
            for a in self._approvals
            if not (update.void_approvals and a.change_id == change_id and a.entry.phase is Phase.PRE)
        ]
        if update.approval is not None:
            new = update.approval
            if any(
                a.change_id == change_id and a.entry.user == new.user and a.entry.phase is new.phase
                for a in approvals
            ):
                return False
            approvals.append(_Approval(next(self._approval_ids), change_id, new))
        for entry in audit:  # a value JSON cannot hold fails before anything is written
            _json(entry.details)
        self._approvals = approvals
        self._rows[change_id] = _updated(row, update)
        if update.replace_notices is not None or update.drop_notices:
            self._cancel_window_notices(change_id, update.at)
        if update.request_review is not None and change_id not in self._reviews:
            review = update.request_review
            self._reviews[change_id] = Review(review.requested_at, review.due_at, review.reason)
        self._plan(change_id, update.replace_notices or (), update.at)
        self._plan(change_id, update.add_notices, update.at)
        self._audit(change_id, audit)
        self._enqueue(intents, update.at)
        return True

    def _cancel_window_notices(self, change_id: str, at: datetime) -> None:
        """Pending notices of the window go; the post-approval and review chases stay."""
        for notice in self._notices:
            if (
                notice.change_id == change_id
                and notice.state == PENDING
                and not notice.key.startswith(OUTLIVE_THE_WINDOW)
            ):
                notice.state, notice.done_at = CANCELLED, at

    async def list_changes(self, query: ChangeQuery) -> list[Change]:
        """Ordered like storage: a requester's own list newest first, else by start; no audit,
        no review, approvals only if asked for."""
        found = self._matching(query)
        if query.requester and not query.starts_from:
            found.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        else:
            found.sort(key=lambda c: (c.draft.starts_at, c.id))
        page = found[query.offset : query.offset + query.limit] if query.limit > 0 else []
        return [self._with_approvals(c) if query.with_approvals else c for c in page]

    async def count_changes(self, query: ChangeQuery) -> int:
        return len(self._matching(query))

    def _matching(self, query: ChangeQuery) -> list[Change]:
        return [c for c in self._rows.values() if _matches(c, query)]

    async def schedule_context(
        self, *, start: datetime, end: datetime, others: ChangeQuery
    ) -> tuple[list[Freeze], list[Change]]:
        return await self.freezes(start=start, end=end), await self.list_changes(others)

    # --- timeline notices ------------------------------------------------------------
    async def next_notice_due(self) -> datetime | None:
        return min((n.due_at for n in self._notices if n.state == PENDING), default=None)

    async def claim_due_notices(self, *, now: datetime, limit: int, lease: timedelta) -> list[DueNotice]:
        """Pending ones due by `now`, and ones whose claimer's lease ran out, earliest first."""
        due = sorted(
            (
                n
                for n in self._notices
                if (n.state == PENDING and n.due_at <= now)
                or (n.state == SENDING and n.lease_until is not None and n.lease_until < now)
            ),
            key=lambda n: (n.due_at, n.id),
        )[: max(limit, 0)]
        for notice in due:
            notice.state, notice.lease_until = SENDING, now + lease
        return [DueNotice(n.id, n.change_id, n.key, n.due_at, n.expires_at) for n in due]

    async def settle_notices(self, settlements: Sequence[NoticeSettlement], *, now: datetime) -> int:
        """Each settlement stands alone: a notice no longer held, or (with a post-state move)
        a post-approval no longer pending, leaves it as it was."""
        settled = 0
        audit: list[tuple[str, AuditEntry]] = []
        intents: list[Intent] = []
        for settlement in settlements:
            notice = next(
                (n for n in self._notices if n.id == settlement.notice_id and n.state == SENDING), None
            )
            if notice is None:
                continue
            if settlement.post_state is not None:
                row = self._rows.get(settlement.change_id)
                if row is None or row.post_state is not PostState.PENDING:
                    continue
                self._rows[row.id] = replace(
                    row, post_state=settlement.post_state, version=row.version + 1, updated_at=now
                )
            notice.state = SENT if settlement.sent else SKIPPED
            notice.late, notice.note, notice.done_at, notice.lease_until = (
                settlement.late,
                settlement.note,
                now,
                None,
            )
            settled += 1
            audit += [(settlement.change_id, entry) for entry in settlement.audit]
            intents += settlement.intents
        for change_id, entry in audit:
            self._audit(change_id, [entry])
        self._enqueue(intents, now)
        return settled

    # --- cron jobs, audit, outbox ------------------------------------------------------
    async def claim_job_run(
        self, *, job: str, period: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> bool:
        if (job, period) in self._job_runs:
            return False
        self._job_runs[(job, period)] = now
        self._audit(None, audit)
        self._enqueue(intents, now)
        return True

    async def record_first_job_run(self, *, job: str, period: str, now: datetime) -> bool:
        if any(ran_job == job for ran_job, _ in self._job_runs):
            return False
        self._job_runs.setdefault((job, period), now)
        return True

    async def append_audit(self, change_id: str | None, entry: AuditEntry) -> None:
        self._audit(change_id, [entry])

    async def add_intents(self, intents: Sequence[Intent], *, now: datetime) -> None:
        self._enqueue(intents, now)

    async def home_opened(self, *, user: str, now: datetime, intents: Sequence[Intent]) -> None:
        self._home_viewers[user] = now
        self._enqueue(intents, now)

    # --- freezes -----------------------------------------------------------------------
    async def freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        """Freezes overlapping [start, end), open-ended ones included, oldest first."""
        return sorted(
            (f for f in self._freezes if f.started_at < end and (f.ended_at is None or f.ended_at > start)),
            key=lambda f: f.started_at,
        )

    async def start_freeze(
        self,
        *,
        reason: str,
        user: str,
        now: datetime,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
        until: datetime | None = None,
    ) -> Freeze | None:
        """None when a freeze is already on (one with an end is on until then)."""
        if any(f.ended_at is None or f.ended_at > now for f in self._freezes):
            return None
        freeze = Freeze(len(self._freezes) + 1, reason, user, now, until)
        self._freezes.append(freeze)
        self._audit(None, audit)
        self._enqueue(intents, now)
        return freeze

    async def end_freeze(
        self, *, user: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Freeze | None:
        """None when no freeze is on."""
        index = next((i for i, f in enumerate(self._freezes) if f.ended_at is None or f.ended_at > now), None)
        if index is None:
            return None
        ended = replace(self._freezes[index], ended_at=now)
        self._freezes[index] = ended
        self._freezes_closed.add(ended.id)
        self._audit(None, audit)
        self._enqueue(intents, now)
        return ended

    async def close_due_freezes(
        self, *, now: datetime, closing: Callable[[Freeze], tuple[list[AuditEntry], list[Intent]]]
    ) -> list[Freeze]:
        """The freezes whose declared end has come, each handed out once."""
        due = [
            f
            for f in self._freezes
            if f.id not in self._freezes_closed and f.ended_at is not None and f.ended_at <= now
        ]
        for freeze in due:
            self._freezes_closed.add(freeze.id)
            audit, intents = closing(freeze)
            self._audit(None, audit)
            self._enqueue(intents, now)
        return due

    # --- delegations ---------------------------------------------------------------------
    def _in_force(self, now: datetime) -> list[int]:
        return [i for i, (d, ended) in enumerate(self._delegations) if ended is None and d.active(now)]

    async def delegations(self, *, now: datetime) -> list[Delegation]:
        return [self._delegations[i][0] for i in self._in_force(now)]

    async def start_delegation(
        self, delegation: Delegation, *, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> None:
        """The delegator's delegation in force ends; this one starts."""
        for i in self._in_force(now):
            if self._delegations[i][0].delegator == delegation.delegator:
                self._delegations[i] = (self._delegations[i][0], now)
        self._delegations.append((delegation, None))
        self._audit(None, audit)
        self._enqueue(intents, now)

    async def end_delegation(
        self, *, delegator: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Delegation | None:
        ended = [i for i in self._in_force(now) if self._delegations[i][0].delegator == delegator]
        if not ended:
            return None
        for i in ended:
            self._delegations[i] = (self._delegations[i][0], now)
        self._audit(None, audit)
        self._enqueue(intents, now)
        return self._delegations[ended[-1]][0]

    # --- reviews and reports -------------------------------------------------------------
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
        review = self._reviews.get(change_id)
        if review is None or review.submitted_at is not None:
            return False
        self._reviews[change_id] = replace(
            review, submitted_at=now, submitted_by=user, answers=_json(answers)
        )
        self._audit(change_id, audit)
        self._enqueue(intents, now)
        return True

    async def review_counts(self, *, start: datetime, end: datetime) -> tuple[int, int]:
        """(due in [start, end), written by their due time)."""
        due = [r for r in self._reviews.values() if start <= r.due_at < end]
        return len(due), sum(1 for r in due if r.submitted_at is not None and r.submitted_at <= r.due_at)

    async def overdue_reviews(self, *, now: datetime) -> list[str]:
        late = [(r.due_at, i) for i, r in self._reviews.items() if r.submitted_at is None and r.due_at < now]
        return [change_id for _, change_id in sorted(late, key=lambda pair: pair[0])]

    async def caused_incidents(self, ids: Sequence[str]) -> list[str]:
        return sorted(i for i in set(ids) if i in self._rows and self._rows[i].caused_incident is not None)

    async def changes_with_history(self, *, start: datetime, end: datetime) -> list[Change]:
        """Changes whose window starts in [start, end), with approvals and the whole audit
        trail (no review: the report counts reviews apart)."""
        rows = sorted(
            (c for c in self._rows.values() if start <= c.draft.starts_at < end),
            key=lambda c: (c.draft.starts_at, c.id),
        )
        return [replace(self._full(row, history=True), review=None) for row in rows]


def _updated(row: Change, update: ChangeUpdate) -> Change:
    """The CR row after `update`: every field it sets, the next version, approved_at
    cleared when the approvals are voided."""
    draft = row.draft if update.draft is None else replace(update.draft, source=row.draft.source)
    if update.starts_at is not None or update.ends_at is not None:
        draft = replace(
            draft,
            starts_at=update.starts_at or draft.starts_at,
            ends_at=update.ends_at or draft.ends_at,
        )
    changed: dict[str, Any] = {"draft": draft, "version": row.version + 1, "updated_at": update.at}
    for name in ("status", "post_state", "steps", "conflicts", "caused_incident", "risk", *_UPDATABLE):
        value = getattr(update, name)
        if value is not None:
            changed[name] = value
    if update.void_approvals and update.approved_at is None:
        changed["approved_at"] = None
    return replace(row, **changed)


_UPDATABLE = ("approved_at", "started_at", "finished_at", "outcome_notes", "approval_due_at")


def _matches(change: Change, query: ChangeQuery) -> bool:
    """storage.changes._matching's filters, one CR at a time."""
    draft = change.draft
    return (
        (not query.requester or change.requester == query.requester)
        and (not query.statuses or change.status in query.statuses)
        and (query.starts_from is None or draft.starts_at >= query.starts_from)
        and (not query.post_states or change.post_state in query.post_states)
        and (query.ends_after is None or draft.ends_at > query.ends_after)
        and (query.ends_before is None or draft.ends_at < query.ends_before)
        and (query.starts_before is None or draft.starts_at < query.starts_before)
        and (not query.risks or change.risk in query.risks)
    )


class MemoryDirectory:
    """Directory over a dict of user groups: user ids stand for themselves, a user-group id
    (S…) for its members, like the Slack directory (an unknown group has none)."""

    def __init__(self, groups: dict[str, Sequence[str]] | None = None) -> None:
        self.groups: dict[str, list[str]] = {k: list(v) for k, v in (groups or {}).items()}
        self.zones: dict[str, str] = {}

    async def expand(self, refs: Sequence[str]) -> frozenset[str]:
        users = {ref for ref in refs if not ref.startswith("S")}
        for group in (ref for ref in refs if ref.startswith("S")):
            users |= set(self.groups.get(group, ()))
        return frozenset(users)

    async def time_zone(self, user: str) -> str | None:
        """The user's Slack time zone, from `zones` (None: unknown)."""
        return self.zones.get(user)


class MemoryNotifier:
    """Counts the wake-ups: a use case that stored intents wakes the dispatcher."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1
