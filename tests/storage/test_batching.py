"""Batched storage calls. Group commit: concurrent CR creations share one transaction,
and nothing else changes (gap-free numbers per year, each CR with its own audit, outbox
rows and notices, a bad CR failing alone). Schedule reads: concurrent ones share one
read, and each caller gets exactly what it would have read alone. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.intents import Intent, IntentKind
from domain.messages import Text
from domain.model import AuditAction, AuditEntry, Change, ChangeDraft, NewChange
from domain.ports import ChangeQuery
from domain.timeline import PlannedNotice
from storage.batching import Batcher
from storage.models import AuditRow, NoticeRow, OutboxRow
from tests.support.harness import Db

# --------------------------------------------------------------------------- the batcher


class BadItem(Exception):
    pass


class Recorder:
    """A writer that records its batches; an item "bad" fails whatever batch it is in."""

    def __init__(self, pause: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.pause = pause

    async def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        await asyncio.sleep(self.pause)
        if "bad" in items:
            raise BadItem("bad")
        return [item.upper() for item in items]


def batcher(write: Recorder) -> Batcher[str, str]:
    return Batcher(write, retry_alone=lambda error: isinstance(error, BadItem), max_batch=10)


async def test_a_lone_call_is_written_at_once() -> None:
    write = Recorder()
    assert await asyncio.wait_for(batcher(write)("a"), 0.1) == "A"
    assert write.batches == [["a"]]


async def test_calls_arriving_while_a_batch_is_written_go_together_in_the_next() -> None:
    write = Recorder(pause=0.05)
    commit = batcher(write)
    first = asyncio.create_task(commit("a"))
    await asyncio.sleep(0.01)  # "a" is being written
    results = await asyncio.gather(first, *(commit(x) for x in "bcdefghijklm"))
    assert results == [x.upper() for x in "abcdefghijklm"]  # each caller gets its own result
    assert write.batches == [["a"], list("bcdefghijk"), ["l", "m"]]  # at most max_batch at a time


async def test_a_bad_item_fails_alone_and_the_others_are_written() -> None:
    write = Recorder()
    commit = batcher(write)
    results = await asyncio.gather(*(commit(x) for x in ["a", "bad", "c"]), return_exceptions=True)
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], BadItem)
    assert write.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_an_error_that_may_have_committed_is_not_written_again() -> None:
    write = Recorder()
    commit: Batcher[str, str] = Batcher(write, retry_alone=lambda error: False)
    results = await asyncio.gather(*(commit(x) for x in ["a", "bad"]), return_exceptions=True)
    assert all(isinstance(r, BadItem) for r in results)
    assert write.batches == [["a", "bad"]]  # no second attempt: it might store "a" twice


async def test_a_caller_that_gives_up_does_not_stop_the_write_or_the_others() -> None:
    write = Recorder(pause=0.05)
    commit = batcher(write)
    first = asyncio.create_task(commit("a"))
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(commit("b"))
    await asyncio.sleep(0)
    waiting.cancel()  # before its batch starts: it is never written
    assert await commit("c") == "C"
    assert await first == "A"
    assert write.batches == [["a"], ["c"]]


async def test_waiters_of_a_batch_resume_one_per_turn_of_the_loop() -> None:
    """So that a batch of twenty does not hold a new request up for all twenty's work."""
    commit = batcher(Recorder(pause=0.01))
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def caller(item: str) -> int:
        await commit(item)
        return turns

    ticking = asyncio.create_task(ticker())
    resumed_at = await asyncio.gather(*(caller(x) for x in "abcdef"))
    ticking.cancel()
    assert len(set(resumed_at)) == len(resumed_at)  # no two resumed in the same turn


# --------------------------------------------------------------------------- the repository


def create(db: Db, title: Any, created: datetime, starts: datetime | None = None) -> Any:
    starts = starts or created + timedelta(days=3)
    draft = ChangeDraft(
        title=title,
        category=Category.NORMAL,
        impact=Impact.MEDIUM,
        likelihood=Likelihood.LOW,
        services=("api-server",),
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        description="what and why",
    )
    return db.repo.create_change(
        NewChange(
            draft=draft,
            risk=Risk.LOW,
            status=Status.APPROVED,
            requester="UREQ",
            created_at=created,
            steps=(),
        ),
        audit=[AuditEntry("UREQ", AuditAction.SUBMITTED, created, {"title": title})],
        intents=lambda change_id: [
            Intent(IntentKind.MESSAGE, change_id, "CCHANGES", Text(text=title), dedupe_key=f"{change_id}:x")
        ],
        notices=[PlannedNotice("t-1h", starts - timedelta(hours=1), starts)],
    )


async def test_concurrent_creations_share_transactions_and_keep_gap_free_numbers_per_year(db: Db) -> None:
    new_year = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    later = new_year + timedelta(seconds=2)
    titles = [f"change {i:02d}" for i in range(30)]
    made: list[Change] = await asyncio.gather(
        *(create(db, title, new_year if i % 2 else later) for i, title in enumerate(titles))
    )
    # Each year counts from 1 without a gap, in arrival order.
    assert [c.id for c in made if c.created_at.year == 2026] == [f"CR-2026-{n:04d}" for n in range(1, 16)]
    assert [c.id for c in made if c.created_at.year == 2027] == [f"CR-2027-{n:04d}" for n in range(1, 16)]
    bumps = [s for s in db.statements if s.lstrip().upper().startswith("INSERT INTO CHANGE_SEQUENCE")]
    assert len(bumps) <= 6, "30 concurrent creations should share a few transactions, not take 30"
    # Every CR carries its own history, outbox row and notice, and reads back whole.
    async with db.sessions() as session:
        audit = dict((await session.execute(sa.select(AuditRow.change_id, AuditRow.details))).all())
        outbox = dict((await session.execute(sa.select(OutboxRow.change_id, OutboxRow.payload))).all())
        notices = (await session.execute(sa.select(NoticeRow.change_id, NoticeRow.due_at))).all()
    by_id = {c.id: c for c in made}
    assert {cid: d["title"] for cid, d in audit.items()} == {c.id: c.draft.title for c in made}
    assert {cid: p["text"] for cid, p in outbox.items()} == {c.id: c.draft.title for c in made}
    assert {cid: due for cid, due in notices} == {
        c.id: c.draft.starts_at - timedelta(hours=1) for c in by_id.values()
    }
    stored = await db.repo.get_changes(list(by_id))
    assert {cid: (c.draft.title, c.status, c.version) for cid, c in stored.items()} == {
        cid: (c.draft.title, Status.APPROVED, 1) for cid, c in by_id.items()
    }


async def test_a_bad_cr_in_a_batch_fails_alone_and_leaves_no_gap(db: Db) -> None:
    created = datetime(2026, 11, 26, 12, tzinfo=UTC)
    titles: list[str | None] = ["one", "two", None, "four", "five"]  # None breaks NOT NULL
    results = await asyncio.gather(*(create(db, t, created) for t in titles), return_exceptions=True)
    assert isinstance(results[2], IntegrityError)
    good = [r for r in results if isinstance(r, Change)]
    assert [(c.id, c.draft.title) for c in good] == [
        ("CR-2026-0001", "one"),
        ("CR-2026-0002", "two"),
        ("CR-2026-0003", "four"),
        ("CR-2026-0004", "five"),
    ]
    assert set(await db.repo.get_changes([c.id for c in good])) == {c.id for c in good}
    assert (await create(db, "six", created)).id == "CR-2026-0005"


@pytest.mark.parametrize("limit", [100, 3])  # 3: the shared answer is cut, callers ask alone
async def test_concurrent_schedule_reads_share_a_read_and_each_gets_its_own_window(
    db: Db, limit: int
) -> None:
    base = datetime(2027, 1, 4, tzinfo=UTC)
    created = base - timedelta(days=7)
    for hour in range(0, 48, 3):  # 16 one-hour CRs, every three hours
        await create(db, f"at {hour}", created, starts=base + timedelta(hours=hour))
    await db.repo.start_freeze(
        reason="release", user="U1", now=base + timedelta(hours=10), audit=[], intents=[]
    )
    await db.repo.end_freeze(user="U1", now=base + timedelta(hours=20), audit=[], intents=[])
    await db.repo.start_freeze(
        reason="incident", user="U1", now=base + timedelta(hours=40), audit=[], intents=[]
    )
    picks = random.Random(limit)
    windows = []
    for _ in range(12):
        start = base + timedelta(hours=picks.randrange(-4, 50), minutes=picks.choice([0, 30]))
        windows.append((start, start + timedelta(hours=picks.choice([1, 2, 5]))))

    def read(start: datetime, end: datetime) -> Any:
        others = ChangeQuery(
            statuses=(Status.APPROVED,),
            starts_before=end,
            ends_after=start,
            limit=limit,
            with_approvals=False,
        )
        return db.repo.schedule_context(start=start, end=end, others=others)

    alone = [await read(start, end) for start, end in windows]
    assert any(changes for _, changes in alone) and any(freezes for freezes, _ in alone)
    assert any(not changes for _, changes in alone)
    db.statements.clear()
    together = await asyncio.gather(*(read(start, end) for start, end in windows))
    assert together == alone
    selects = [s for s in db.statements if s.lstrip().upper().startswith("SELECT")]
    if limit == 100:
        assert len(selects) <= 6, "12 concurrent reads should share a read or two, not make 24 queries"


async def test_concurrent_cr_reads_share_a_read_and_each_gets_what_it_asked_for(db: Db) -> None:
    created = datetime(2026, 11, 26, 12, tzinfo=UTC)
    ids = [(await create(db, f"c{i}", created)).id for i in range(6)]
    asks = [
        (ids[:2], False),
        (ids[1:4], True),
        ([ids[5], "CR-2026-9999"], False),  # an unknown id is simply absent
        (ids, True),
        ([ids[0]], False),
    ]
    alone = [await db.repo.get_changes(wanted, history=history) for wanted, history in asks]
    assert [sorted(a) for a in alone] == [ids[:2], ids[1:4], [ids[5]], ids, [ids[0]]]
    assert alone[1][ids[1]].audit and alone[0][ids[0]].audit == ()  # history only when asked
    db.statements.clear()
    together = await asyncio.gather(*(db.repo.get_changes(w, history=h) for w, h in asks))
    assert together == alone
    selects = [s for s in db.statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 8, (
        "five concurrent reads should share two reads (one per history flag), not make 20 queries"
    )
