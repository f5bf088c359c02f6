#!/usr/bin/env python
"""Timeline / outbox benchmark for changebot (a script, not a pytest test).

    python bench/bench_timeline.py [--db sqlite|postgres|both] [--changes 10000] [--quick]

What it measures, on SQLite and on a throwaway PostgreSQL (tests/support/pg_server.py), against
the in-process Slack emulator (tooling/emulator/), with the real bot wiring
(build_changebot + start, APScheduler ticking every second) and a real-time clock:

1. notice dispatch lag in a DB of 10,000 approved scheduled CRs (~40k+ pending notices,
   ~70k sent outbox rows of history); lag = moment the emulator received the
   chat.postMessage - the notice's due time.
   1a: a burst of ~500 notices over ~10 s at pace=0 (the pipeline's capacity);
   1c: 50 notices over 10 s at pace=0; 1d: the everyday case, 40 notices coming due
   0.5/s with the production pacing (1 message/s per channel);
   1b (`--parts paced-burst`, minutes long): the 500-notice burst at production pacing,
   which Slack's 1 msg/s/channel limit makes a queue by design.
2. restart to resumed dispatch: a fresh bot (in-process, and as a fresh Python process
   doing what `changebot serve` does) with overdue notices -> first message received.
3. N notices due in the same minute for one channel while the emulator answers some
   calls 429 + Retry-After: all delivered, none twice, paced; achieved msgs/s.
4. `/change calendar` and the digest over 10,000 CRs: service.calendar + calendar_blocks.
Plus floors: a bare chat.postMessage round trip through AsyncWebClient, a bare DB round
trip, and the cost of one idle scheduler tick.

Only bench/ is written to (results JSON); databases live in a temp directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import logging
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Changebot, build_changebot, migrate
from bot.settings import Settings
from domain.calendar import days_range, parse_calendar_range
from domain.enums import Category, Impact, Likelihood, Status
from domain.model import format_change_id
from domain.policy import Policy
from domain.policy_loader import parse_policy
from domain.risk import assess_risk
from domain.timeline import plan_notices, spec_for
from modals.timeline import calendar_blocks
from storage.audit_chain import chain_start, entry_hash
from storage.database import create_engine
from storage.migrate import upgrade
from storage.models import (
    ApprovalRow,
    AuditRow,
    CardCopyRow,
    ChangeRow,
    ChangeSequence,
    NoticeRow,
    OutboxRow,
)
from tooling.emulator import Call, SlackEmulator

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 07:00 Europe/London: before the 09:00 digest
CHANNEL = "CCHANGES"
YEAR = 2026
ENGINEERS = [f"UENG{i:03d}" for i in range(200)]
LEADS = ["ULEAD1", "ULEAD2"]
# No bulk notice falls due in the first QUIET after seeding, so during the benchmark the
# only notices coming due are the scenario slices (retimed, like `/change reschedule`).
QUIET = timedelta(hours=1)
LEAD_SECONDS = 6.0  # scenario moments are this far after the bot started (steady state)

log = logging.getLogger("bench")


def _tests_module(name: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"tests.support.{name}")


# The tests' policy (tests/support/policy_fixture.py) with the default timeline (T-24h, T-1h, T-0,
# T+15m, overrun) and no stakeholder channels: every timeline message goes to the thread
# of the CR card in #changes and, for T-1h/T-0/T+15m/overrun, to the implementer's DM.
# Kept here, not imported, so the numbers do not move when the test fixture changes.
BENCH_POLICY = """
timezone: Europe/London
channels:
  changes: CCHANGES
  incidents: CINCIDENTS
roles:
  tech_lead: [ULEAD1, ULEAD2]
  engineering_manager: [SMANAGERS]
  cto: [UCTO]
services: [api-server, database, redis-cache, kubernetes]
approvals:
  by_risk:
    low: []
    medium: [{role: tech_lead, count: 1}]
    high: [{role: tech_lead, count: 2}, {role: engineering_manager, count: 1}]
    critical: [{role: cto, count: 1}]
  by_category:
    standard: []
    major: [{role: engineering_manager, count: 1}, {role: cto, count: 1}]
standard_catalog:
  - id: security-patch
    title: Security patch
    services: [api-server, kubernetes]
timeline:
  rollback_triggers: [Error rate > 5%]
required_fields: {}
lead_time: {}
"""


def load_policy() -> Policy:
    return parse_policy(BENCH_POLICY)


# --------------------------------------------------------------------------- clock


class RealTimeClock:
    """A FakeClock that moves in real time: `start` plus the monotonic time elapsed since
    `t0`. Lets the emulator's Call.at (time.monotonic) be mapped exactly onto bot time,
    and keeps the date fixed (no digest due, reproducible calendar)."""

    def __init__(self, start: datetime, t0: float | None = None) -> None:
        self.start = start
        self.t0 = time.monotonic() if t0 is None else t0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)

    def at(self, mono: float) -> datetime:
        return self.start + timedelta(seconds=mono - self.t0)

    def mono(self, moment: datetime) -> float:
        return self.t0 + (moment - self.start).total_seconds()


# --------------------------------------------------------------------------- stats


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not values:
        return float("nan")
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def summary(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "min": ordered[0],
        "p50": pct(ordered, 50),
        "p95": pct(ordered, 95),
        "p99": pct(ordered, 99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def censored_summary(lags: Sequence[float], lower_bounds: Sequence[float]) -> dict[str, Any]:
    """Percentiles when some messages never arrived before the deadline: for those only a
    lower bound of the lag is known, so a percentile that lands on one is reported as '>='."""
    items = sorted([(v, False) for v in lags] + [(v, True) for v in lower_bounds])
    if not items:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(items), "delivered": len(lags), "undelivered": len(lower_bounds)}
    for name, p in (("p50", 50), ("p99", 99)):
        value, cens = items[max(0, math.ceil(p / 100 * len(items)) - 1)]
        out[name] = value
        out[name + "_is_lower_bound"] = cens
    value, cens = items[-1]
    out["max"] = value
    out["max_is_lower_bound"] = cens
    return out


def fmt_lag(s: dict[str, Any], key: str) -> str:
    if not s.get("n"):
        return "n/a"
    value = s[key]
    return (">=" if s.get(key + "_is_lower_bound") else "") + f"{value:.3f}"


class Probe:
    """Counts and times calls to bot internals by wrapping instance attributes (the code
    under test is not modified)."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # calls, secs, max

    def wrap(
        self,
        obj: Any,
        name: str,
        rows: Callable[[Any], int] | None = None,
    ) -> None:
        original = getattr(obj, name)
        stats = self.stats

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            result = None
            try:
                result = await original(*args, **kwargs)
                return result
            finally:
                took = time.perf_counter() - began
                entry = stats[name]
                entry[0] += 1
                entry[1] += took
                entry[2] = max(entry[2], took)
                if rows is not None and result is not None:
                    stats[name + ".rows"][0] += rows(result)

        setattr(obj, name, wrapper)

    def attach(self, bot: Changebot) -> None:
        dispatcher = bot.context.dispatcher
        store = dispatcher._store
        service = bot.context.service
        repo = service._repo
        self.wrap(dispatcher, "_pass")
        self.wrap(store, "claim_due", rows=len)
        self.wrap(store, "retry_at")
        self.wrap(store, "mark_all_sent")
        for optional in (
            "reserve_slot",
            "hold_channel",
            "defer_paced",
            "release",
        ):  # newer outbox stores pace through the DB
            if hasattr(store, optional):
                self.wrap(store, optional)
        self.wrap(dispatcher._gateway, "deliver")
        self.wrap(service, "process_due_notices")
        self.wrap(repo, "claim_due_notices", rows=len)
        self.wrap(repo, "settle_notices")
        self.wrap(repo, "get_changes")
        self.wrap(repo, "get_change")

    def report(self) -> dict[str, Any]:
        return {
            name: {
                "calls": int(c),
                "total_s": round(t, 3),
                "mean_ms": round(1000 * t / c, 3) if c else 0,
                "max_ms": round(1000 * m, 3),
            }
            for name, (c, t, m) in sorted(self.stats.items())
        }


# --------------------------------------------------------------------------- seeding


@dataclass
class Seed:
    anchor: datetime
    ids: list[str]
    counts: dict[str, int]
    seconds: float


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def bulk_rows(
    n: int, anchor: datetime, policy: Policy, rng: random.Random
) -> dict[Any, list[dict[str, Any]]]:
    """10,000 approved CRs over the next 30 days, with what their history left behind:
    approvals, audit, card copies, sent outbox rows and their planned notices."""
    tables: dict[Any, list[dict[str, Any]]] = {
        ChangeRow: [],
        ApprovalRow: [],
        AuditRow: [],
        CardCopyRow: [],
        OutboxRow: [],
        NoticeRow: [],
    }
    categories = [Category.NORMAL] * 7 + [Category.STANDARD] * 2 + [Category.MAJOR]
    impacts, likelihoods = list(Impact), list(Likelihood)
    for k in range(1, n + 1):
        cid = format_change_id(YEAR, k)
        while True:
            start = anchor + timedelta(minutes=rng.randint(2 * 60 + 1, 30 * 24 * 60))
            if not anchor - timedelta(minutes=1) <= start - timedelta(hours=24) <= anchor + QUIET:
                break
        end = start + timedelta(minutes=rng.choice([30, 60, 60, 120, 240]))
        created = anchor - timedelta(minutes=rng.randint(60, 7 * 24 * 60))
        approved = created + timedelta(minutes=rng.randint(5, 55))
        category = rng.choice(categories)
        impact, likelihood = rng.choice(impacts), rng.choice(likelihoods)
        requester = rng.choice(ENGINEERS)
        implementer = rng.choice(ENGINEERS) if rng.random() < 0.7 else None
        tables[ChangeRow].append(
            {
                "id": cid,
                "year": YEAR,
                "sequence": k,
                "title": f"Roll out service release {k} to the {rng.choice(['eu', 'us', 'ap'])} cluster",
                "category": category.value,
                "impact": impact.value,
                "likelihood": likelihood.value,
                "risk": assess_risk(policy.risk_matrix, impact=impact, likelihood=likelihood).value,
                "services": rng.sample(list(policy.services), rng.randint(1, 2)),
                "starts_at": start,
                "ends_at": end,
                "description": "Deploy the new build with the usual canary steps. " * 3,
                "justification": "Fixes customer-facing bugs.",
                "implementation_plan": "1. canary 5%\n2. 50%\n3. 100%",
                "rollback_plan": "Redeploy the previous tag.",
                "test_plan": "Smoke tests and dashboards." if rng.random() < 0.8 else "",
                "downtime_minutes": 0,
                "catalog_id": None,
                "requester": requester,
                "implementer": implementer,
                "status": Status.APPROVED.value,
                "version": 2,
                "steps": [{"role": "tech_lead", "count": 1, "members": LEADS}],
                "created_at": created,
                "updated_at": approved,
                "approved_at": approved,
                "started_at": None,
                "finished_at": None,
                "outcome_notes": "",
            }
        )
        tables[ApprovalRow].append(
            {
                "change_id": cid,
                "user_id": "ULEAD1",
                "decision": "approve",
                "step_index": 0,
                "reason": "",
                "decided_at": approved,
            }
        )
        head = chain_start(cid)
        for actor, action, at in (
            (requester, "submitted", created),
            ("ULEAD1", "approval_recorded", approved),
            ("changebot", "approved", approved),
        ):
            entry = {"change_id": cid, "actor": actor, "action": action, "at": at, "details": {"bench": True}}
            entry.update(prev_hash=head, hash=entry_hash(entry, head))
            head = entry["hash"]
            tables[AuditRow].append(entry)
        ts = f"{int(created.timestamp())}.{k:06d}"
        tables[CardCopyRow].append({"change_id": cid, "channel": CHANNEL, "ts": ts, "user_id": None})
        tables[CardCopyRow].append({"change_id": cid, "channel": "D_ULEAD1", "ts": ts, "user_id": "ULEAD1"})
        history = [
            ("post_card", CHANNEL, f"{cid}:card:{CHANNEL}", {}),
            ("message", requester, f"{cid}:filed", {"template": "filed", "status": "pending_approval"}),
            ("dm_approvers", None, f"{cid}:dm-approvers", {}),
            ("dm_card", "ULEAD1", f"{cid}:dm:ULEAD1", {}),
            ("dm_card", "ULEAD2", f"{cid}:dm:ULEAD2", {}),
            ("refresh_cards", None, None, {}),
            ("message", requester, None, {"template": "decided", "by": "ULEAD1", "decision": "approve"}),
        ]
        for kind, channel, dedupe, payload in history:
            tables[OutboxRow].append(
                {
                    "kind": kind,
                    "change_id": cid,
                    "channel": channel,
                    "payload": payload,
                    "dedupe_key": dedupe,
                    "state": "sent",
                    "attempts": 1,
                    "recovered": False,
                    "due_at": created,
                    "lease_until": None,
                    "created_at": created,
                    "sent_at": created,
                    "last_error": None,
                }
            )
        tables[NoticeRow] += notice_rows(cid, start, end, approved, policy, sent_before=anchor)
    return tables


def notice_rows(
    cid: str,
    start: datetime,
    end: datetime,
    approved: datetime,
    policy: Policy,
    *,
    sent_before: datetime,
    pending_until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Planned notices of one CR: those due before `sent_before` are already sent; with
    `pending_until`, those due after it are stored cancelled, so that follow-ups of a
    scenario's CRs (T+15m, overrun) do not come due while the scenario is observed."""
    out = []
    for notice in plan_notices(policy.timeline, starts_at=start, ends_at=end, approved_at=approved):
        done = notice.due_at < sent_before
        later = pending_until is not None and notice.due_at > pending_until
        out.append(
            {
                "change_id": cid,
                "key": notice.key,
                "due_at": notice.due_at,
                "expires_at": notice.expires_at,
                "state": "sent" if done else "cancelled" if later else "pending",
                "lease_until": None,
                "late": False,
                "created_at": approved,
                "done_at": notice.due_at if done else sent_before if later else None,
                "note": None,
            }
        )
    return out


async def seed_database(url: str, n: int, anchor: datetime, policy: Policy) -> Seed:
    began = time.perf_counter()
    await asyncio.to_thread(upgrade, url)
    tables = bulk_rows(n, anchor, policy, random.Random(20261123))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(ChangeSequence.__table__), [{"year": YEAR, "last": n}])  # type: ignore[attr-defined]
            for model, rows in tables.items():
                for chunk in _chunks(rows):
                    await conn.execute(sa.insert(model.__table__), chunk)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE")
        async with engine.connect() as conn:
            pending = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(NoticeRow.__table__)
                    .where(  # type: ignore[attr-defined]
                        NoticeRow.__table__.c.state == "pending"  # type: ignore[attr-defined]
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    counts = {model.__tablename__: len(rows) for model, rows in tables.items()}
    counts["notice(pending)"] = int(pending)
    return Seed(anchor, [r["id"] for r in tables[ChangeRow]], counts, time.perf_counter() - began)


@dataclass(frozen=True)
class NoticeInfo:
    id: int
    change_id: str
    key: str
    due_at: datetime
    state: str


async def retime(
    url: str,
    plans: Sequence[tuple[str, datetime, datetime]],
    *,
    sent_before: datetime,
    policy: Policy,
    pending_until: datetime | None = None,
) -> list[NoticeInfo]:
    """Move a slice of the CRs to new windows, as a reschedule does: pending notices are
    dropped and planned again (those due before `sent_before` count as already sent)."""
    engine = create_engine(url)
    change = ChangeRow.__table__  # type: ignore[attr-defined]
    notice = NoticeRow.__table__  # type: ignore[attr-defined]
    ids = [p[0] for p in plans]
    try:
        async with engine.begin() as conn:
            approved = {
                row.id: row.approved_at
                for row in await conn.execute(
                    sa.select(change.c.id, change.c.approved_at).where(change.c.id.in_(ids))
                )
            }
            await conn.execute(sa.delete(notice).where(notice.c.change_id.in_(ids)))
            await conn.execute(
                sa.update(change)
                .where(change.c.id == sa.bindparam("b_id"))
                .values(
                    starts_at=sa.bindparam("b_start", type_=change.c.starts_at.type),
                    ends_at=sa.bindparam("b_end", type_=change.c.ends_at.type),
                ),
                [{"b_id": cid, "b_start": s, "b_end": e} for cid, s, e in plans],
            )
            rows: list[dict[str, Any]] = []
            for cid, s, e in plans:
                rows += notice_rows(
                    cid, s, e, approved[cid], policy, sent_before=sent_before, pending_until=pending_until
                )
            await conn.execute(sa.insert(notice), rows)
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.select(
                    notice.c.id, notice.c.change_id, notice.c.key, notice.c.due_at, notice.c.state
                ).where(notice.c.change_id.in_(ids))
            )
            return [NoticeInfo(r.id, r.change_id, r.key, r.due_at, r.state) for r in found]
    finally:
        await engine.dispose()


async def outbox_notice_map(url: str, outbox_ids: Sequence[int]) -> dict[int, tuple[int, str, str | None]]:
    """outbox id -> (notice id, audience name, channel), from dedupe keys `notice:<id>:<name>`."""
    engine = create_engine(url)
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    out: dict[int, tuple[int, str, str | None]] = {}
    try:
        async with engine.connect() as conn:
            for chunk in [list(outbox_ids)[i : i + 500] for i in range(0, len(outbox_ids), 500)]:
                rows = await conn.execute(
                    sa.select(table.c.id, table.c.dedupe_key, table.c.channel).where(table.c.id.in_(chunk))
                )
                for row in rows:
                    parts = (row.dedupe_key or "").split(":", 2)
                    if len(parts) == 3 and parts[0] == "notice":
                        out[row.id] = (int(parts[1]), parts[2], row.channel)
    finally:
        await engine.dispose()
    return out


async def table_states(url: str, model: Any, where: Any = None) -> dict[str, int]:
    engine = create_engine(url)
    table = model.__table__
    try:
        async with engine.connect() as conn:
            statement = sa.select(table.c.state, sa.func.count()).group_by(table.c.state)
            if where is not None:
                statement = statement.where(where(table))
            return {state: int(count) for state, count in await conn.execute(statement)}
    finally:
        await engine.dispose()


def outbox_id(call: Call) -> int | None:
    metadata = call.params.get("metadata") or {}
    payload = metadata.get("event_payload") or {} if isinstance(metadata, dict) else {}
    value = payload.get("outbox_id")
    return int(value) if value is not None else None


def audience(policy: Policy, key: str) -> list[str]:
    """The outbox targets timeline_notice_intents (domain/usecases/notices.py) makes for a notice (this policy)."""
    spec = spec_for(policy.timeline, key)
    names: list[str] = []
    for who in spec.audience if spec else ["thread"]:
        if who == "stakeholders":
            names += [f"stakeholders:{c}" for c in policy.timeline.stakeholders.get(Category.NORMAL, [])]
        else:
            names.append(who)
    return names


# --------------------------------------------------------------------------- databases


class Target:
    name = ""

    async def setup(self, changes: int, policy: Policy) -> Seed: ...
    async def clone(self, label: str) -> str: ...
    async def drop(self, url: str) -> None: ...
    async def close(self) -> None: ...
    def version(self) -> str: ...


class SqliteTarget(Target):
    name = "sqlite"

    def __init__(self, clock: RealTimeClock) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="changebot-bench-"))
        self.clock = clock

    def _url(self, path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    async def setup(self, changes: int, policy: Policy) -> Seed:
        seed = await seed_database(self._url(self.dir / "seed.db"), changes, self.clock.now(), policy)
        with contextlib.closing(sqlite3.connect(self.dir / "seed.db")) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return seed

    async def clone(self, label: str) -> str:
        path = self.dir / f"{label}.db"
        with (
            contextlib.closing(sqlite3.connect(self.dir / "seed.db")) as src,
            contextlib.closing(sqlite3.connect(path)) as dst,
        ):
            src.backup(dst)
        return self._url(path)

    async def drop(self, url: str) -> None:
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)

    async def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, file in {tempfile.gettempdir()})"


class PostgresTarget(Target):
    name = "postgres"

    def __init__(self, clock: RealTimeClock) -> None:
        self.clock = clock
        pg_server = _tests_module("pg_server")
        self.server = pg_server.ThrowawayPostgres().start()
        self._version = ""

    async def setup(self, changes: int, policy: Policy) -> Seed:
        self.server.create_database("seed")
        url = self.server.url("seed")
        seed = await seed_database(url, changes, self.clock.now(), policy)
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                self._version = str((await conn.exec_driver_sql("SHOW server_version")).scalar_one())
        finally:
            await engine.dispose()
        return seed

    async def clone(self, label: str) -> str:
        await asyncio.to_thread(self.server.create_database, label, "seed")
        return str(self.server.url(label))

    async def drop(self, url: str) -> None:
        await asyncio.to_thread(self.server.drop_database, url.rsplit("/", 1)[1])

    async def close(self) -> None:
        self.server.stop()

    def version(self) -> str:
        return f"PostgreSQL {self._version} (throwaway: fsync=off, synchronous_commit=off)"


# --------------------------------------------------------------------------- bot helpers


def bench_settings(url: str, emulator: SlackEmulator) -> Settings:
    return Settings(
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench-secret",
        slack_api_url=emulator.base_url,
        database_url=url,
    )


async def stop_bot(bot: Changebot) -> None:
    """Quiesce, then stop. A dispatcher with a paced backlog never leaves dispatch_due (see
    README), and Changebot.stop() does not wait for a running scheduler job, so the claims
    are made to come back empty first; otherwise the engine is disposed under a live tick."""

    async def nothing(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    if bot.scheduler.running:
        bot.scheduler.pause()
    bot.context.dispatcher._store.claim_due = nothing  # type: ignore[method-assign]
    bot.context.service._repo.claim_due_notices = nothing  # type: ignore[attr-defined]
    for _ in range(200):
        if not bot.context.dispatcher._lock.locked():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    await bot.stop()


class SchedulerLog(logging.Handler):
    """Counts APScheduler's 'skipped: maximum number of running instances reached' (a tick
    that found the previous one still running) and job errors, instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        job = (
            "notices_tick" if "notices_tick" in message else "dispatch_due" if "dispatch" in message else "?"
        )
        if "skipped: maximum number of running instances" in message:
            self.counts[f"tick skipped ({job} still running)"] += 1
        elif record.levelno >= logging.ERROR:
            self.counts[f"job error ({job})"] += 1
        else:
            self.counts["other warning"] += 1

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts.clear()
        return out


SCHEDULER_LOG = SchedulerLog()


def posts(emulator: SlackEmulator, after: float = 0.0) -> list[Call]:
    return [c for c in emulator.calls if c.method == "chat.postMessage" and c.at >= after]


async def wait_until(predicate: Callable[[], bool], deadline: float, step: float = 0.1) -> bool:
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


# --------------------------------------------------------------------------- scenario 1


async def scenario_lag(
    target: Target,
    seed: Seed,
    clock: RealTimeClock,
    policy: Policy,
    *,
    pace: float,
    burst: int,
    window: float,
    timeout: float,
) -> dict[str, Any]:
    label = f"lag_pace{str(pace).replace('.', '_')}"
    url = await target.clone(label)
    emulator = SlackEmulator(clock=clock)
    await emulator.start()
    try:
        t0 = clock.now() + timedelta(seconds=LEAD_SECONDS)
        plans = []
        for i, cid in enumerate(seed.ids[:burst]):
            due = t0 + timedelta(seconds=window * i / burst)
            start = due if i % 2 == 0 else due + timedelta(hours=1)  # t_0 or t_minus_1h due at `due`
            plans.append((cid, start, start + timedelta(hours=1)))
        window_end = t0 + timedelta(seconds=window)
        notices = await retime(url, plans, sent_before=t0, policy=policy, pending_until=window_end)
        scenario = {n.id: n for n in notices if n.state == "pending" and t0 <= n.due_at <= window_end}
        expected = sum(len(audience(policy, n.key)) for n in scenario.values())
        bot = build_changebot(
            bench_settings(url, emulator), policy, clock=clock, pace=timedelta(seconds=pace)
        )
        probe = Probe()
        probe.attach(bot)
        SCHEDULER_LOG.take()
        await bot.start()
        t0_mono = clock.mono(t0)
        deadline = clock.mono(window_end) + timeout
        await wait_until(lambda: len(posts(emulator, t0_mono)) >= expected, deadline, 0.25)
        finished = time.monotonic()
        await stop_bot(bot)
        calls = posts(emulator, t0_mono)
        mapping = await outbox_notice_map(url, [i for c in calls if (i := outbox_id(c)) is not None])
        first: dict[tuple[int, str], float] = {}
        duplicates = 0
        for call in calls:
            oid = outbox_id(call)
            if oid is None or oid not in mapping or mapping[oid][0] not in scenario:
                continue
            key = mapping[oid][:2]
            if key in first:
                duplicates += 1
                continue
            first[key] = call.at
        lags: dict[str, list[float]] = defaultdict(list)
        bounds: dict[str, list[float]] = defaultdict(list)
        per_notice: list[float] = []
        per_notice_bounds: list[float] = []
        for notice in scenario.values():
            due_mono = clock.mono(notice.due_at)
            got = []
            for name in audience(policy, notice.key):
                kind = "thread (#changes, paced)" if name in ("thread", "changes") else "implementer DM"
                if (notice.id, name) in first:
                    lag = first[(notice.id, name)] - due_mono
                    got.append(lag)
                    lags["all"].append(lag)
                    lags[kind].append(lag)
                else:
                    bounds["all"].append(finished - due_mono)
                    bounds[kind].append(finished - due_mono)
            if got:
                per_notice.append(min(got))
            else:
                per_notice_bounds.append(finished - due_mono)
        delivered_times = sorted(first.values())
        result = {
            "pace_s": pace,
            "notices": len(scenario),
            "messages_expected": expected,
            "messages_delivered": len(first),
            "duplicates": duplicates,
            "window_s": window,
            "observed_until_s_after_window": round(finished - clock.mono(window_end), 2),
            "lag_all_messages": censored_summary(lags["all"], bounds["all"]),
            "lag_first_message_per_notice": censored_summary(per_notice, per_notice_bounds),
            "lag_by_target": {
                kind: censored_summary(lags[kind], bounds[kind])
                for kind in sorted(set(lags) | set(bounds))
                if kind != "all"
            },
            "throughput_msgs_per_s": (
                round((len(delivered_times) - 1) / (delivered_times[-1] - delivered_times[0]), 2)
                if len(delivered_times) > 1 and delivered_times[-1] > delivered_times[0]
                else None
            ),
            "probe": probe.report(),
            "scheduler": SCHEDULER_LOG.take(),
        }
        return result
    finally:
        await emulator.stop()
        await target.drop(url)


# --------------------------------------------------------------------------- scenario 2


def installed_like_env() -> dict[str, str]:
    """The restarted process finds the project's code compiled, as it is where changebot
    is installed from its wheel (pip writes the .pyc files at install time; the Docker
    image does). This editable checkout has none, and with PYTHONDONTWRITEBYTECODE set
    every fresh process would compile ~10,000 lines first. The .pyc files go where Python
    looks for them (`__pycache__/`, ignored by git); the dependencies have theirs already."""
    import compileall

    for package in ("bot", "domain", "handlers", "modals", "scheduler", "storage"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    return dict(os.environ)


async def scenario_restart(
    target: Target,
    seed: Seed,
    clock: RealTimeClock,
    policy: Policy,
    *,
    overdue: int,
    down_for: float,
    subprocess_mode: bool,
) -> dict[str, Any]:
    label = "restart_proc" if subprocess_mode else "restart_inproc"
    url = await target.clone(label)
    emulator = SlackEmulator(clock=clock)
    await emulator.start()
    try:
        now = clock.now()
        down_since = now - timedelta(seconds=down_for)
        plans = []
        for i, cid in enumerate(seed.ids[:overdue]):
            due = down_since + timedelta(seconds=(down_for - 1) * i / overdue)
            plans.append((cid, due, due + timedelta(hours=1)))  # their t_0 came due while down
        notices = await retime(url, plans, sent_before=down_since, policy=policy)
        due_now = [n for n in notices if n.state == "pending" and n.due_at <= now]
        settings = bench_settings(url, emulator)
        stages: dict[str, float] = {}
        child_env = installed_like_env() if subprocess_mode else None
        # Seeding and cloning leave the database's writes to flush; a restart is measured
        # on a settled machine, not against that write-back.
        os.sync()
        await asyncio.sleep(1)
        SCHEDULER_LOG.take()
        began = time.monotonic()
        proc = None
        bot = None
        if subprocess_mode:
            policy_file = Path(tempfile.mkdtemp(prefix="changebot-bench-")) / "policy.yml"
            policy_file.write_text(BENCH_POLICY)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve().parent / "restart_child.py"),
                url,
                emulator.base_url,
                str(policy_file),
                clock.start.isoformat(),
                str(clock.t0),
                stdout=asyncio.subprocess.PIPE,
                cwd=str(ROOT),
                env=child_env,
            )
        else:
            await migrate(settings)
            stages["migrated"] = time.monotonic()
            bot = build_changebot(settings, policy, clock=clock)
            stages["built"] = time.monotonic()
            await bot.start()
            stages["started"] = time.monotonic()
        got_first = await wait_until(lambda: bool(posts(emulator)), began + 60, 0.005)
        first = posts(emulator)[0].at if got_first else None
        await asyncio.sleep(max(0.0, began + 5 - time.monotonic()))
        delivered_5s = len([c for c in posts(emulator) if c.at <= began + 5])
        if proc is not None:
            assert proc.stdout is not None
            proc.terminate()
            out, _ = await proc.communicate()
            for line in out.decode().splitlines():
                with contextlib.suppress(ValueError):
                    data = json.loads(line)
                    stages[data["stage"]] = float(data["t"])
        if bot is not None:
            await stop_bot(bot)
        return {
            "mode": "fresh python process, code compiled as installed (imports + alembic upgrade + build + start)"
            if subprocess_mode
            else "in-process (alembic upgrade + build_changebot + start)",
            "overdue_notices": len(due_now),
            "down_for_s": down_for,
            "first_message_s": round(first - began, 3) if first is not None else None,
            "stages_s": {k: round(v - began, 3) for k, v in sorted(stages.items(), key=lambda kv: kv[1])},
            "messages_within_5s": delivered_5s,
            "scheduler": SCHEDULER_LOG.take(),
        }
    finally:
        await emulator.stop()
        await target.drop(url)


# --------------------------------------------------------------------------- scenario 3


async def scenario_ratelimit(
    target: Target, seed: Seed, clock: RealTimeClock, policy: Policy, *, count: int
) -> dict[str, Any]:
    url = await target.clone("ratelimit")
    emulator = SlackEmulator(clock=clock)
    await emulator.start()
    try:
        t0 = clock.now() + timedelta(seconds=LEAD_SECONDS)
        plans = []
        for cid in seed.ids[:count]:
            due = t0  # every t_minus_24h due at the same moment (windows start on the minute)
            start = due + timedelta(hours=24)
            plans.append((cid, start, start + timedelta(hours=1)))
        notices = await retime(url, plans, sent_before=t0, policy=policy)
        scenario = {
            n.id: n
            for n in notices
            if n.state == "pending" and n.key == "t_minus_24h" and t0 <= n.due_at <= t0 + timedelta(minutes=1)
        }
        assert all(audience(policy, n.key) == ["thread"] for n in scenario.values())
        bot = build_changebot(bench_settings(url, emulator), policy, clock=clock)
        probe = Probe()
        probe.attach(bot)
        SCHEDULER_LOG.take()
        await bot.start()
        injected: list[float] = []
        cycle = [1, 3, 2, 5]

        def inject(retry_after: float) -> None:
            emulator.fail_next("chat.postMessage", status=429, retry_after=retry_after)
            injected.append(retry_after)

        t0_mono = clock.mono(t0)
        await asyncio.sleep(max(0.0, t0_mono - 0.05 - time.monotonic()))
        inject(2)  # the very first send of the minute is rate limited
        deadline = t0_mono + count * 3 + 120  # pacing measured at ~0.5/s, plus Retry-After pauses
        step = max(5, count // 10)
        next_mark = step
        while time.monotonic() < deadline:
            done = len(posts(emulator, t0_mono))
            if done >= count:
                break
            if done >= next_mark:
                inject(cycle[len(injected) % len(cycle)])
                next_mark += step
            await asyncio.sleep(0.05)
        await stop_bot(bot)
        ok = sorted(posts(emulator, t0_mono), key=lambda c: c.at)
        failed = sorted(
            (c for c in emulator.failed_calls if c.method == "chat.postMessage" and c.at >= t0_mono - 1),
            key=lambda c: c.at,
        )
        mapping = await outbox_notice_map(url, [i for c in ok if (i := outbox_id(c)) is not None])
        delivered = Counter(mapping[i][0] for c in ok if (i := outbox_id(c)) in mapping)
        outbox_dups = sum(n - 1 for n in Counter(outbox_id(c) for c in ok).values() if n > 1)
        stored = [m for m in emulator.messages(CHANNEL) if m.get("metadata")]
        stored_dups = sum(
            n - 1
            for n in Counter(m["metadata"]["event_payload"]["outbox_id"] for m in stored).values()
            if n > 1
        )
        channel_ok = [c.at for c in ok if c.params.get("channel") == CHANNEL]
        attempts = sorted(
            [(c.at, True) for c in ok if c.params.get("channel") == CHANNEL]
            + [(c.at, False) for c in failed if c.params.get("channel") == CHANNEL]
        )
        ok_gaps = [b - a for a, b in itertools.pairwise(channel_ok)]
        attempt_gaps = [b[0] - a[0] for a, b in itertools.pairwise(attempts)]
        honoured = []
        for index, call in enumerate(failed):
            retry_after = injected[index] if index < len(injected) else None
            following = [t for t, _ in attempts if t > call.at]
            if retry_after is not None and following:
                honoured.append(
                    {"retry_after_s": retry_after, "next_attempt_after_s": round(following[0] - call.at, 3)}
                )
        notice_states = await table_states(url, NoticeRow, lambda t: t.c.id.in_(list(scenario)))
        span = channel_ok[-1] - channel_ok[0] if len(channel_ok) > 1 else float("nan")
        return {
            "notices": len(scenario),
            "delivered_distinct_notices": len([n for n in delivered if n in scenario]),
            "all_delivered": all(n in delivered for n in scenario),
            "duplicate_posts_same_outbox_row": outbox_dups,
            "duplicate_notices_posted_twice": sum(1 for n in delivered.values() if n > 1),
            "duplicate_messages_in_channel_history": stored_dups,
            "429_injected": len(injected),
            "429_answered": len(failed),
            "retry_after_honoured": honoured,
            "retry_after_all_honoured": all(
                h["next_attempt_after_s"] >= h["retry_after_s"] - 0.05 for h in honoured
            ),
            "rate_msgs_per_s_first_to_last": round((len(channel_ok) - 1) / span, 3) if span == span else None,
            "rate_msgs_per_s_from_due": round(len(channel_ok) / (channel_ok[-1] - t0_mono), 3)
            if channel_ok
            else None,
            "min_gap_between_posts_s": round(min(ok_gaps), 3) if ok_gaps else None,
            "min_gap_between_attempts_s": round(min(attempt_gaps), 3) if attempt_gaps else None,
            "median_gap_s": round(statistics.median(ok_gaps), 3) if ok_gaps else None,
            "last_delivery_after_first_due_s": round(channel_ok[-1] - t0_mono, 2) if channel_ok else None,
            "notice_states": notice_states,
            "probe": probe.report(),
            "scheduler": SCHEDULER_LOG.take(),
        }
    finally:
        await emulator.stop()
        await target.drop(url)


# --------------------------------------------------------------------------- scenario 4 + floors


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, list[float]]:
    """(cold first call, warm calls) in seconds."""
    began = time.perf_counter()
    await fn()
    cold = time.perf_counter() - began
    warm = []
    for _ in range(n):
        began = time.perf_counter()
        await fn()
        warm.append(time.perf_counter() - began)
    return cold, warm


def ms(s: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v * 1000, 3) if isinstance(v, float) else v) for k, v in s.items()}


async def scenario_calendar_and_floors(
    target: Target, clock: RealTimeClock, policy: Policy, *, repeat: int, seed_size: int
) -> dict[str, Any]:
    url = await target.clone("calendar")
    emulator = SlackEmulator(clock=clock)
    await emulator.start()
    bot = build_changebot(bench_settings(url, emulator), policy, clock=clock)  # not started: no ticks
    service = bot.context.service
    zone = policy.zone
    results: dict[str, Any] = {}
    try:
        now = clock.now()
        today = now.astimezone(zone).date()
        spans = {
            "today": parse_calendar_range("today", now=now, zone=zone),
            "week": parse_calendar_range("week", now=now, zone=zone),
            "digest (today + 3 days)": days_range(today, 1 + policy.digest.days_ahead, zone, "digest"),
        }
        for name, span in spans.items():
            assert span is not None
            view = await service.calendar(span=span)
            rows = len(view.scheduled)
            q_cold, q_warm = await timed(lambda s=span: service.calendar(span=s), repeat)

            async def render(v: Any = view) -> None:
                calendar_blocks(v, zone=zone)

            r_cold, r_warm = await timed(render, repeat)

            async def both(s: Any = span) -> None:
                calendar_blocks(await service.calendar(span=s), zone=zone)

            b_cold, b_warm = await timed(both, repeat)
            results[name] = {
                "scheduled_rows_shown": rows,
                "blocks": len(calendar_blocks(view, zone=zone)),
                "calendar_query_ms": ms(summary(q_warm)) | {"cold": round(q_cold * 1000, 3)},
                "calendar_blocks_ms": ms(summary(r_warm)) | {"cold": round(r_cold * 1000, 3)},
                "total_ms": ms(summary(b_warm)) | {"cold": round(b_cold * 1000, 3)},
            }

        async def select_one() -> None:
            async with bot.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

        _, db_rt = await timed(select_one, 200)

        some_id = format_change_id(YEAR, max(1, seed_size // 2))

        async def get_change() -> None:
            await service.get_change(change_id=some_id)

        _, get_rt = await timed(get_change, 200)
        _, notice_tick = await timed(service.process_due_notices, repeat)
        _, outbox_tick = await timed(bot.context.dispatcher.dispatch_due, repeat)
        floors = {
            "db_select_1_ms": ms(summary(db_rt)),
            "repository_get_change_ms": ms(summary(get_rt)),
            "idle_tick_process_due_notices_ms": ms(summary(notice_tick)),
            "idle_tick_dispatch_due_ms": ms(summary(outbox_tick)),
        }
        return {"calendar": results, "floors": floors}
    finally:
        await bot.engine.dispose()
        await emulator.stop()
        await target.drop(url)


async def slack_floor(n: int) -> dict[str, Any]:
    """A bare chat.postMessage through AsyncWebClient to the emulator: the floor of any lag."""
    emulator = SlackEmulator()
    await emulator.start()
    client = AsyncWebClient(token="xoxb-bench", base_url=emulator.base_url, retry_handlers=[])
    try:
        _, warm = await timed(
            lambda: client.chat_postMessage(channel="CFLOOR", text="floor", unfurl_links=False), n
        )
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 400}}]
        _, warm_blocks = await timed(
            lambda: client.chat_postMessage(
                channel="CFLOOR",
                text="floor",
                blocks=blocks,
                metadata={"event_type": "x", "event_payload": {}},
            ),
            n,
        )
        return {
            "chat_postMessage_ms": ms(summary(warm)),
            "chat_postMessage_blocks_metadata_ms": ms(summary(warm_blocks)),
        }
    finally:
        await emulator.stop()


# --------------------------------------------------------------------------- driver


async def run_database(kind: str, args: argparse.Namespace, policy: Policy) -> dict[str, Any]:
    clock = RealTimeClock(START)
    if kind == "sqlite":
        target: Target = SqliteTarget(clock)
    else:
        pg_server = _tests_module("pg_server")
        try:
            target = PostgresTarget(clock)
        except pg_server.PostgresUnavailable as exc:
            print(f"!!! PostgreSQL unavailable, skipped: {exc.reason}", file=sys.stderr)
            return {"skipped": exc.reason}
    out: dict[str, Any] = {}

    async def part(name: str, run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
        """One part; a failure is recorded and reported, and the other parts still run."""
        load = os.getloadavg()[0]
        try:
            out[name] = await run()
            out[name]["loadavg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # at start, at end
            return out[name]
        except Exception as exc:
            log.exception("[%s] %s failed", kind, name)
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            return None

    try:
        say(f"[{kind}] seeding {args.changes} CRs ...")
        seed = await target.setup(args.changes, policy)
        out["database"] = target.version()
        out["seed"] = {"seconds": round(seed.seconds, 2), "rows": seed.counts}
        say(f"[{kind}] seeded in {seed.seconds:.1f}s: {seed.counts}")
        parts = set(args.parts)
        if "lag" in parts:
            say(f"[{kind}] 1a: {args.burst} notices over {args.window}s, pace=0 (pipeline only) ...")
            r = await part(
                "lag_pace0",
                lambda: scenario_lag(
                    target, seed, clock, policy, pace=0.0, burst=args.burst, window=args.window, timeout=60
                ),
            )
            if r:
                say(f"[{kind}]     {brief_lag(r)}")
            say(f"[{kind}] 1c: {args.light} notices over {args.window}s, pace=0 (light load) ...")
            r = await part(
                "lag_pace0_light",
                lambda: scenario_lag(
                    target, seed, clock, policy, pace=0.0, burst=args.light, window=args.window, timeout=60
                ),
            )
            if r:
                say(f"[{kind}]     {brief_lag(r)}")
            steady_window = args.steady / args.steady_rate
            say(
                f"[{kind}] 1d: {args.steady} notices over {steady_window:.0f}s, production pacing "
                "(1 msg/s/channel): the everyday lag ..."
            )
            r = await part(
                "lag_pace1_steady",
                lambda: scenario_lag(
                    target,
                    seed,
                    clock,
                    policy,
                    pace=1.0,
                    burst=args.steady,
                    window=steady_window,
                    timeout=60,
                ),
            )
            if r:
                say(f"[{kind}]     {brief_lag(r)}")
        if "paced-burst" in parts:
            say(
                f"[{kind}] 1b: {args.burst} notices, production pacing (1 msg/s/channel), observed "
                f"{args.lag_timeout:.0f}s after the window ..."
            )
            r = await part(
                "lag_pace1",
                lambda: scenario_lag(
                    target,
                    seed,
                    clock,
                    policy,
                    pace=1.0,
                    burst=args.burst,
                    window=args.window,
                    timeout=args.lag_timeout,
                ),
            )
            if r:
                say(f"[{kind}]     {brief_lag(r)}")
        if "restart" in parts:
            for name, overdue, mode in (
                ("restart_inprocess", args.overdue, False),
                ("restart_process", args.overdue, True),
                ("restart_inprocess_small", 10, False),
            ):
                how = "fresh process" if mode else "in-process"
                say(f"[{kind}] 2: restart with {overdue} overdue notices ({how}) ...")
                r = await part(
                    name,
                    lambda overdue=overdue, mode=mode: scenario_restart(  # type: ignore[misc]
                        target, seed, clock, policy, overdue=overdue, down_for=120, subprocess_mode=mode
                    ),
                )
                if r:
                    say(f"[{kind}]     first message after {r['first_message_s']}s; stages {r['stages_s']}")
        if "ratelimit" in parts:
            say(f"[{kind}] 3: {args.paced} notices due in one minute to {CHANNEL}, with 429s ...")
            r = await part(
                "ratelimit", lambda: scenario_ratelimit(target, seed, clock, policy, count=args.paced)
            )
            if r:
                say(
                    f"[{kind}]     delivered {r['delivered_distinct_notices']}/{r['notices']}, "
                    f"dups {r['duplicate_posts_same_outbox_row']}, "
                    f"rate {r['rate_msgs_per_s_first_to_last']}/s,"
                    f" 429s {r['429_answered']}, retry-after honoured {r['retry_after_all_honoured']}"
                )
        if "calendar" in parts:
            say(f"[{kind}] 4: calendar over {args.changes} CRs + floors ...")
            r = await part(
                "calendar_and_floors",
                lambda: scenario_calendar_and_floors(
                    target, clock, policy, repeat=args.repeat, seed_size=len(seed.ids)
                ),
            )
            if r:
                out["calendar"], out["floors"] = r["calendar"], r["floors"]
                del out["calendar_and_floors"]
                for name, c in out["calendar"].items():
                    say(
                        f"[{kind}]     {name}: total p50 {c['total_ms']['p50']}ms "
                        f"p95 {c['total_ms']['p95']}ms"
                    )
    finally:
        await target.close()
    return out


def brief_lag(r: dict[str, Any]) -> str:
    s = r["lag_all_messages"]
    return (
        f"delivered {r['messages_delivered']}/{r['messages_expected']} msgs; lag p50 {fmt_lag(s, 'p50')}s "
        f"p99 {fmt_lag(s, 'p99')}s max {fmt_lag(s, 'max')}s"
    )


def say(text: str) -> None:
    print(text, flush=True)


def table(results: dict[str, Any]) -> str:
    dbs = [
        k
        for k in ("sqlite", "postgres")
        if k in results["databases"] and "skipped" not in results["databases"][k]
    ]
    lines = ["| measurement | goal | " + " | ".join(dbs) + " |", "|---|---|" + "---|" * len(dbs)]

    def row(name: str, goal: str, fn: Callable[[dict[str, Any]], str]) -> None:
        cells = []
        for db in dbs:
            try:
                cells.append(fn(results["databases"][db]))
            except (KeyError, TypeError, IndexError):
                cells.append("n/a")
        lines.append(f"| {name} | {goal} | " + " | ".join(cells) + " |")

    def lag(part: str, key: str) -> Callable[[dict[str, Any]], str]:
        def cell(d: dict[str, Any]) -> str:
            s = d[part][key]
            return f"{fmt_lag(s, 'p50')} / {fmt_lag(s, 'p99')} / {fmt_lag(s, 'max')}"

        return cell

    row("1a lag pace=0, all msgs p50/p99/max (s)", "p99 < 1 s", lag("lag_pace0", "lag_all_messages"))
    row(
        "1a delivered",
        "all",
        lambda d: f"{d['lag_pace0']['messages_delivered']}/{d['lag_pace0']['messages_expected']}",
    )
    row("1c lag pace=0, light load, all msgs (s)", "p99 < 1 s", lag("lag_pace0_light", "lag_all_messages"))
    row(
        "1d lag at production pacing, steady load, all msgs p50/p99/max (s)",
        "p99 < 1 s",
        lag("lag_pace1_steady", "lag_all_messages"),
    )
    row(
        "1d delivered",
        "all",
        lambda d: (
            f"{d['lag_pace1_steady']['messages_delivered']}/{d['lag_pace1_steady']['messages_expected']}"
        ),
    )
    row("1b lag pace=1/s, all msgs p50/p99/max (s)", "p99 < 1 s", lag("lag_pace1", "lag_all_messages"))
    row(
        "1b lag pace=1/s, first msg per notice (s)",
        "p99 < 1 s",
        lag("lag_pace1", "lag_first_message_per_notice"),
    )
    row(
        "1b delivered by end of observation",
        "all",
        lambda d: f"{d['lag_pace1']['messages_delivered']}/{d['lag_pace1']['messages_expected']}",
    )
    row(
        "2 restart in-process → first msg (s)",
        "< 2 s",
        lambda d: str(d["restart_inprocess"]["first_message_s"]),
    )
    row(
        "2 restart fresh process → first msg (s)",
        "< 2 s",
        lambda d: str(d["restart_process"]["first_message_s"]),
    )
    row(
        "2 restart in-process, 10 overdue → first msg (s)",
        "< 2 s",
        lambda d: str(d["restart_inprocess_small"]["first_message_s"]),
    )
    row(
        "3 delivered / duplicates",
        "all / 0",
        lambda d: (
            f"{d['ratelimit']['delivered_distinct_notices']}/{d['ratelimit']['notices']} / "
            f"{d['ratelimit']['duplicate_posts_same_outbox_row']}"
        ),
    )
    row(
        "3 rate msgs/s (first→last) / min gap (s)",
        "≤ ~1/s",
        lambda d: (
            f"{d['ratelimit']['rate_msgs_per_s_first_to_last']} / {d['ratelimit']['min_gap_between_posts_s']}"
        ),
    )
    row(
        "3 429s answered / Retry-After honoured",
        "yes",
        lambda d: f"{d['ratelimit']['429_answered']} / {d['ratelimit']['retry_after_all_honoured']}",
    )
    for span in ("today", "week"):
        row(
            f"4 calendar {span}: query+blocks p50/p95 (ms)",
            "< 100 ms",
            lambda d, s=span: (
                f"{d['calendar'][s]['total_ms']['p50']} / {d['calendar'][s]['total_ms']['p95']}"
            ),
        )
    row("floor: DB SELECT 1 p50 (ms)", "", lambda d: str(d["floors"]["db_select_1_ms"]["p50"]))
    row(
        "floor: idle notice tick p50 (ms)",
        "",
        lambda d: str(d["floors"]["idle_tick_process_due_notices_ms"]["p50"]),
    )
    row(
        "floor: idle outbox tick p50 (ms)", "", lambda d: str(d["floors"]["idle_tick_dispatch_due_ms"]["p50"])
    )
    floor = results.get("slack_floor", {}).get("chat_postMessage_ms", {})
    if floor:
        lines.append(
            f"\nBare chat.postMessage via AsyncWebClient → emulator: p50 {floor['p50']} ms, "
            f"p99 {floor['p99']} ms (same for both databases)."
        )
    return "\n".join(lines)


def code_version() -> dict[str, Any]:
    """The commit measured, and whether code outside bench/ differed from it (others edit
    the tree concurrently; the restart child imports the tree as it is when spawned)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [
        line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")
    ]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty_files_outside_bench": dirty}


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--changes", type=int, default=10_000, help="approved scheduled CRs to seed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="30 notices in part 3 (not 200); observe part 1b for 15 s after the burst (not until drained)",
    )
    parser.add_argument("--burst", type=int, default=500, help="part 1: notices made due in the window")
    parser.add_argument("--window", type=float, default=10.0, help="part 1: seconds the burst is spread over")
    parser.add_argument(
        "--lag-timeout",
        type=float,
        default=None,
        help="part 1b: at most this many seconds of observing after the window (default 1500, quick 15)",
    )
    parser.add_argument("--paced", type=int, default=None, help="part 3: notices (default 200, quick 30)")
    parser.add_argument("--light", type=int, default=50, help="part 1c: notices in the light-load run")
    parser.add_argument("--steady", type=int, default=40, help="part 1d: notices at production pacing")
    parser.add_argument(
        "--steady-rate", type=float, default=0.5, help="part 1d: notices coming due per second"
    )
    parser.add_argument("--overdue", type=int, default=300, help="part 2: notices that came due while down")
    parser.add_argument("--repeat", type=int, default=30, help="part 4: warm repetitions")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["lag", "restart", "ratelimit", "calendar"],
        choices=["lag", "paced-burst", "restart", "ratelimit", "calendar"],
        help="paced-burst (1b: the burst at 1 msg/s/channel, minutes long) runs only when named",
    )
    parser.add_argument(
        "--json", type=Path, default=BENCH / "results.json", help="where to write all numbers"
    )
    args = parser.parse_args(argv)
    if args.lag_timeout is None:
        args.lag_timeout = 15.0 if args.quick else 1500.0
    if args.paced is None:
        args.paced = 30 if args.quick else 200
    return args


async def main(args: argparse.Namespace) -> None:
    policy = load_policy()
    began = time.monotonic()
    results: dict[str, Any] = {
        "machine": machine(),
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if not k.startswith("child")
        },
        "databases": {},
    }
    results["code_at_start"] = code_version()
    say(f"machine: {results['machine']}; code: {results['code_at_start']}")
    results["slack_floor"] = await slack_floor(200)
    say(f"floor: bare chat.postMessage round trip {results['slack_floor']['chat_postMessage_ms']}")
    for kind in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        results["databases"][kind] = await run_database(kind, args, policy)
    results["total_seconds"] = round(time.monotonic() - began, 1)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["code_at_end"] = code_version()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    say("\n" + table(results))
    say(f"\ntotal {results['total_seconds']}s; all numbers in {args.json}")


if __name__ == "__main__":
    arguments = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scheduler_logger = logging.getLogger("apscheduler")
    scheduler_logger.addHandler(SCHEDULER_LOG)
    scheduler_logger.propagate = False
    asyncio.run(main(arguments))
