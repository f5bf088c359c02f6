"""storage.reports, the audit export, /metrics text, the report chart and blocks, on SQLite
and PostgreSQL, over a small history written through the real repository."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib.image
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from adapters.audit_export import export_audit
from adapters.charts import render_report_chart
from adapters.prometheus import SlackErrorCounter, collect_families, metrics_text
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.intents import Intent, IntentKind
from domain.messages import Text
from domain.metrics import Targets, WeekPoint, compute_metrics, weekly_series
from domain.model import (
    SYSTEM_ACTOR,
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    Phase,
    PostState,
)
from domain.ports import ChangeUpdate, NoticeSettlement
from domain.timeline import PlannedNotice
from modals.report import report_blocks
from storage import reports
from storage.outbox import OutboxStore
from tests.support.harness import Db
from tests.support.paths import ROOT

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DASHBOARD = ROOT / "deploy" / "grafana" / "changebot-dashboard.json"


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


async def file(
    db: Db,
    *,
    category: Category,
    created: datetime,
    starts: datetime,
    status: Status = Status.PENDING_APPROVAL,
    post_due: datetime | None = None,
    notices: tuple[PlannedNotice, ...] = (),
) -> Change:
    draft = ChangeDraft(
        title=f"{category.value} change",
        category=category,
        impact=Impact.MEDIUM,
        likelihood=Likelihood.LOW,
        services=("api-server",),
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        description="what and why",
    )
    return await db.repo.create_change(
        NewChange(
            draft=draft,
            risk=Risk.LOW,
            status=status,
            requester="UREQ",
            created_at=created,
            steps=(),
            post_state=PostState.PENDING if post_due else None,
            post_due_at=post_due,
        ),
        audit=[AuditEntry("UREQ", AuditAction.SUBMITTED, created, {"category": category.value})],
        intents=lambda change_id: [Intent(IntentKind.MESSAGE, change_id, "CCHANGES", Text(text="filed"))],
        notices=notices,
    )


async def step(db: Db, change_id: str, update: ChangeUpdate, *audit: AuditEntry) -> None:
    current = await db.repo.get_change(change_id)
    assert current is not None
    assert await db.repo.update_change(
        change_id=change_id, expected_version=current.version, update=update, audit=audit, intents=[]
    )


def event(action: AuditAction, moment: datetime, actor: str = "UIMPL", **details: Any) -> AuditEntry:
    return AuditEntry(actor, action, moment, details)


async def history(db: Db) -> dict[str, str]:
    """A: normal, approved by a person after 1 h, completed and closed (two notices, 5 s and
    120 s late). B: standard, auto-approved, rolled back. C: major, approved by two after
    24 h, then cancelled. D: emergency, post-approved in time, completed. E: outside November."""
    a = await file(
        db,
        category=Category.NORMAL,
        created=at(2, 9),
        starts=at(3, 10),
        notices=(PlannedNotice("t_minus_24h", at(2, 10), None), PlannedNotice("t_0", at(3, 10), None)),
    )
    await step(
        db,
        a.id,
        ChangeUpdate(
            at=at(2, 10),
            status=Status.APPROVED,
            approved_at=at(2, 10),
            approval=ApprovalEntry("UMGR", Decision.APPROVE, 0, at(2, 10), "looks fine"),
        ),
        event(AuditAction.APPROVAL_RECORDED, at(2, 10), "UMGR"),
        event(AuditAction.APPROVED, at(2, 10), SYSTEM_ACTOR, quorum="complete"),
    )
    for claim_at, sent_at in ((at(2, 10, 0, 5), at(2, 10, 0, 5)), (at(3, 10, 2), at(3, 10, 2))):
        [notice] = await db.repo.claim_due_notices(now=claim_at, limit=10, lease=timedelta(seconds=60))
        settled = NoticeSettlement(notice.id, a.id, sent=True, late=False, note=None, audit=[], intents=[])
        assert await db.repo.settle_notices([settled], now=sent_at) == 1
    await step(
        db,
        a.id,
        ChangeUpdate(at=at(3, 10), status=Status.IN_PROGRESS, started_at=at(3, 10)),
        event(AuditAction.STARTED, at(3, 10)),
    )
    await step(
        db,
        a.id,
        ChangeUpdate(at=at(3, 11), status=Status.COMPLETED, finished_at=at(3, 11)),
        event(AuditAction.COMPLETED, at(3, 11), notes="all good"),
    )
    await step(db, a.id, ChangeUpdate(at=at(4, 9), status=Status.CLOSED), event(AuditAction.CLOSED, at(4, 9)))

    b = await file(db, category=Category.STANDARD, created=at(5, 9), starts=at(6, 10), status=Status.APPROVED)
    await step(
        db,
        b.id,
        ChangeUpdate(at=at(6, 11), status=Status.ROLLED_BACK, started_at=at(6, 10), finished_at=at(6, 11)),
        event(AuditAction.STARTED, at(6, 11), implicit=True),
        event(AuditAction.ROLLED_BACK, at(6, 11), notes='errors "spiked", rolled back; see <#C1>'),
    )

    c = await file(db, category=Category.MAJOR, created=at(5, 12), starts=at(20, 2))
    await step(
        db, c.id, ChangeUpdate(at=at(6, 8), approval=ApprovalEntry("UMGR", Decision.APPROVE, 0, at(6, 8)))
    )
    await step(
        db,
        c.id,
        ChangeUpdate(
            at=at(6, 12),
            status=Status.APPROVED,
            approved_at=at(6, 12),
            approval=ApprovalEntry("UCTO", Decision.APPROVE, 1, at(6, 12)),
        ),
        event(AuditAction.APPROVED, at(6, 12), SYSTEM_ACTOR),
    )
    await step(
        db, c.id, ChangeUpdate(at=at(8), status=Status.CANCELLED), event(AuditAction.CANCELLED, at(8), "UREQ")
    )

    d = await file(
        db,
        category=Category.EMERGENCY,
        created=at(10, 3),
        starts=at(10, 3),
        status=Status.APPROVED,
        post_due=at(11, 3),
    )
    await step(
        db,
        d.id,
        ChangeUpdate(
            at=at(10, 8),
            post_state=PostState.APPROVED,
            approval=ApprovalEntry("UCTO", Decision.APPROVE, 0, at(10, 8), phase=Phase.POST),
        ),
        event(AuditAction.POST_APPROVED, at(10, 8), SYSTEM_ACTOR),
    )
    await step(
        db,
        d.id,
        ChangeUpdate(at=at(10, 4), status=Status.COMPLETED, started_at=at(10, 3), finished_at=at(10, 4)),
        event(AuditAction.COMPLETED, at(10, 4)),
    )

    e = await file(db, category=Category.NORMAL, created=at(25, 9), starts=at(2, 10, month=12))
    await db.repo.append_audit(
        None, event(AuditAction.DIGEST_POSTED, at(7, 9), SYSTEM_ACTOR, day="2026-11-07")
    )
    return {"A": a.id, "B": b.id, "C": c.id, "D": d.id, "E": e.id}


async def test_changes_in_period_loads_approvals_and_audit_in_three_queries(db: Db) -> None:
    ids = await history(db)
    db.statements.clear()
    changes = await reports.changes_in_period(db.sessions, start=NOV, end=DEC)
    selects = [s for s in db.statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, selects  # rows, approvals, audit: not one query per change
    assert [c.id for c in changes] == [ids["A"], ids["B"], ids["D"], ids["C"]]  # by window start
    a, b, d, c = changes
    assert [e.action for e in a.audit] == [
        AuditAction.SUBMITTED,
        AuditAction.APPROVAL_RECORDED,
        AuditAction.APPROVED,
        AuditAction.STARTED,
        AuditAction.COMPLETED,
        AuditAction.CLOSED,
    ]
    assert [(x.user, x.step_index) for x in c.approvals] == [("UMGR", 0), ("UCTO", 1)]
    assert d.post_approvals[0].user == "UCTO" and d.post_state is PostState.APPROVED
    assert b.status is Status.ROLLED_BACK and b.started_at == at(6, 10)
    assert await reports.changes_in_period(db.sessions, start=at(1, month=12), end=at(2, month=12)) == []

    m = compute_metrics(changes=changes, start=NOV, end=DEC, targets=Targets())
    assert (m.total, m.finished, m.succeeded, m.rolled_back) == (4, 3, 2, 1)  # A closed after completing
    assert m.success_rate == pytest.approx(66.6666666)
    assert (m.post_approval_on_time, m.post_approval_due) == (1, 1)
    assert m.lead_time_mean == timedelta(hours=(25 + 25 + 0) / 3)  # A 25 h, B 25 h, D 0


async def test_audit_events_are_ordered_by_time_then_id(db: Db) -> None:
    ids = await history(db)
    events = await reports.audit_events(db.sessions, since=NOV, until=DEC)
    assert [(e["change_id"], e["action"]) for e in events] == [
        (ids["A"], "submitted"),
        (ids["A"], "approval_recorded"),
        (ids["A"], "approved"),
        (ids["A"], "started"),
        (ids["A"], "completed"),
        (ids["A"], "closed"),
        (ids["B"], "submitted"),
        (ids["C"], "submitted"),
        (ids["B"], "started"),
        (ids["B"], "rolled_back"),
        (ids["C"], "approved"),
        (None, "digest_posted"),  # written last, but it happened on the 7th
        (ids["C"], "cancelled"),
        (ids["D"], "submitted"),
        (ids["D"], "completed"),
        (ids["D"], "post_approved"),
        (ids["E"], "submitted"),
    ]
    assert all(e["at"].tzinfo is not None for e in events)
    assert events[-6]["details"] == {"day": "2026-11-07"}
    paged = [e async for e in reports.iter_audit_events(db.sessions, since=NOV, until=DEC, batch=2)]
    assert paged == events
    assert len(await reports.audit_events(db.sessions, since=at(3, 10), until=at(3, 11))) == 1  # half-open


async def test_status_rollback_outbox_and_latency_queries(db: Db) -> None:
    await history(db)
    counts = await reports.status_counts(db.sessions)
    assert len(counts) == len(Category) * len(Status)  # every pair, zero-filled
    assert {k: v for k, v in counts.items() if v} == {
        (Category.NORMAL, Status.CLOSED): 1,
        (Category.STANDARD, Status.ROLLED_BACK): 1,
        (Category.MAJOR, Status.CANCELLED): 1,
        (Category.EMERGENCY, Status.COMPLETED): 1,
        (Category.NORMAL, Status.PENDING_APPROVAL): 1,
    }
    assert await reports.rollback_count(db.sessions) == 1
    assert await reports.outcome_counts(db.sessions) == {
        Status.COMPLETED: 2,
        Status.FAILED: 0,
        Status.ROLLED_BACK: 1,
    }
    assert sorted(await reports.approval_latencies(db.sessions)) == [3600.0, 86400.0]  # A, C; not B, D
    assert await reports.approval_latencies(db.sessions, since=at(6)) == [86400.0]
    assert sorted(await reports.notice_lags(db.sessions, since=NOV, until=DEC)) == [5.0, 120.0]
    store = OutboxStore(db.sessions)
    first, second = await store.claim_due(now=at(26), limit=2, lease=timedelta(seconds=30))
    await store.mark_all_sent([(first.id or 0, at(26))])
    await store.mark_dead(second.id or 0, error="channel_not_found")
    assert await reports.outbox_depth(db.sessions) == {"pending": 3, "sending": 0, "sent": 1, "dead": 1}


async def test_export_audit_csv_and_json_round_trip(db: Db) -> None:
    await history(db)
    events = await reports.audit_events(db.sessions, since=NOV, until=DEC)
    expected = [
        {
            "id": e["id"],
            "at": e["at"].astimezone(UTC).isoformat(),
            "change_id": e["change_id"],
            "actor": e["actor"],
            "action": e["action"],
            "details": e["details"],
            "prev_hash": e["prev_hash"],
            "hash": e["hash"],
        }
        for e in events
    ]
    out = io.StringIO()
    assert await export_audit(db.sessions, since=NOV, until=DEC, fmt="csv", out=out) == 17
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert out.getvalue().startswith("id,at,change_id,actor,action,details,prev_hash,hash\n")
    parsed = [
        {
            "id": int(r["id"]),
            "at": r["at"],
            "change_id": r["change_id"] or None,
            "actor": r["actor"],
            "action": r["action"],
            "details": json.loads(r["details"]),
            "prev_hash": r["prev_hash"],
            "hash": r["hash"],
        }
        for r in rows
    ]
    assert parsed == expected
    assert parsed[0]["at"] == "2026-11-02T09:00:00+00:00"
    assert any("spiked" in str(r["details"]) for r in parsed)  # quotes, commas survive

    out = io.StringIO()
    assert await export_audit(db.sessions, since=NOV, until=DEC, fmt="json", out=out) == 17
    assert json.loads(out.getvalue()) == expected

    for fmt, empty in (("csv", "id,at,change_id,actor,action,details,prev_hash,hash\n"), ("json", "[]\n")):
        out = io.StringIO()
        assert await export_audit(db.sessions, since=DEC, until=at(2, month=12), fmt=fmt, out=out) == 0  # type: ignore[arg-type]
        assert out.getvalue() == empty
        if fmt == "json":
            assert json.loads(out.getvalue()) == []


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} from Prometheus text, via the official parser."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_text_parses_and_has_the_families(db: Db) -> None:
    await history(db)
    store = OutboxStore(db.sessions)
    [row] = await store.claim_due(now=at(26), limit=1, lease=timedelta(seconds=30))
    await store.mark_dead(row.id or 0, error="channel_not_found")
    errors = SlackErrorCounter()
    errors.record("chat.postMessage", "ratelimited")
    errors.record("chat.postMessage", "ratelimited")
    errors.record("chat.update", "message_not_found")
    assert errors.snapshot() == {
        ("chat.postMessage", "ratelimited"): 2,
        ("chat.update", "message_not_found"): 1,
    }

    text = await metrics_text(db.sessions, slack_errors=errors.snapshot(), now=at(3, 12))
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families == {
        "changebot_change_total": "gauge",
        "changebot_change_outcomes": "gauge",
        "changebot_rollbacks": "counter",
        "changebot_approval_latency_seconds": "histogram",
        "changebot_notice_lag_seconds": "histogram",
        "changebot_outbox_depth": "gauge",
        "changebot_slack_api_errors": "counter",
    }
    values = samples(text)
    changes = values["changebot_change_total"]
    assert len(changes) == len(Category) * len(Status) and sum(changes.values()) == 5
    assert changes[(("category", "normal"), ("status", "closed"))] == 1
    assert changes[(("category", "major"), ("status", "completed"))] == 0
    assert values["changebot_rollbacks_total"] == {(): 1}
    assert values["changebot_change_outcomes"] == {  # A closed after completing, B, D
        (("outcome", "completed"),): 2,
        (("outcome", "failed"),): 0,
        (("outcome", "rolled_back"),): 1,
    }
    latency = values["changebot_approval_latency_seconds_bucket"]
    assert latency[(("le", "1800.0"),)] == 0
    assert latency[(("le", "3600.0"),)] == 1
    assert latency[(("le", "86400.0"),)] == 2 and latency[(("le", "+Inf"),)] == 2
    assert values["changebot_approval_latency_seconds_count"] == {(): 2}
    assert values["changebot_approval_latency_seconds_sum"] == {(): 90000.0}
    lag = values["changebot_notice_lag_seconds_bucket"]  # last 24 h before 3 Nov 12:00: only the 120 s one
    assert lag[(("le", "60.0"),)] == 0 and lag[(("le", "120.0"),)] == 1 and lag[(("le", "+Inf"),)] == 1
    assert values["changebot_notice_lag_seconds_sum"] == {(): 120.0}
    assert values["changebot_outbox_depth"] == {
        (("state", "pending"),): 4,
        (("state", "sending"),): 0,
        (("state", "sent"),): 0,
        (("state", "dead"),): 1,
    }
    assert values["changebot_slack_api_errors_total"] == {
        (("error", "ratelimited"), ("method", "chat.postMessage")): 2,
        (("error", "message_not_found"), ("method", "chat.update")): 1,
    }
    assert len(await collect_families(db.sessions, slack_errors={}, now=at(3, 12))) == 7
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        name
        for p in dashboard["panels"]
        for t in p["targets"]
        for name in re.findall(r"changebot_\w+", t["expr"])
    }
    assert used and used <= set(values), used - set(values)  # the dashboard only asks for what we export


async def test_chart_and_report_from_stored_history(db: Db) -> None:
    await history(db)
    changes = await reports.changes_in_period(db.sessions, start=NOV, end=DEC)
    series = weekly_series(changes=changes, start=NOV, end=DEC)
    # A B | D | C is cancelled (20th): in no weekly count | - | -
    assert [sum(p.by_category.values()) for p in series] == [2, 1, 0, 0, 0]
    png = render_report_chart(series, title="Changes, November 2026")
    assert png.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0  # not blank

    metrics = compute_metrics(changes=changes, start=NOV, end=DEC, targets=Targets())
    blocks = report_blocks(metrics, title="Monthly Change Report - November 2026", zone=ZoneInfo("UTC"))
    assert blocks[0]["type"] == "header" and len(blocks) <= 50
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Successful: 2 (66.7%) of 3 finished" in text
    assert ":warning: Rollback rate: *33.3%* (target &lt; 3%)" in text
    assert "1 of 1 post-approved by the deadline (100.0%)" in text


def test_chart_is_deterministic_and_copes_with_no_data() -> None:
    series = [
        WeekPoint(
            NOV,
            {Category.STANDARD: 3, Category.NORMAL: 1, Category.MAJOR: 0, Category.EMERGENCY: 1},
            75.0,
            25.0,
        ),
        WeekPoint(at(8), {c: 0 for c in Category}, None, None),  # a gap in the rate lines
    ]
    png = render_report_chart(series, title="Two weeks", zone=ZoneInfo("Europe/Berlin"))
    assert png == render_report_chart(series, title="Two weeks", zone=ZoneInfo("Europe/Berlin"))
    assert matplotlib.image.imread(io.BytesIO(png), format="png").shape == (450, 900, 4)
    empty = render_report_chart([], title="Nothing")
    assert empty.startswith(PNG_SIGNATURE) and matplotlib.image.imread(io.BytesIO(empty), format="png").size


async def test_notices_are_settled_in_one_transaction_each_standing_on_its_own(db: Db) -> None:
    """A batch settles what is still ours; a notice another replica took over, or whose
    post-approval state moved meanwhile, is left for its next judgement, and nothing of
    it (audit, posts) is written."""
    due = at(2, 10)
    ordinary = await file(
        db,
        category=Category.NORMAL,
        created=at(1),
        starts=at(3),
        notices=(PlannedNotice("t_minus_24h", due, None),),
    )
    decided = await file(
        db,
        category=Category.EMERGENCY,
        created=at(1),
        starts=at(1, 1),
        status=Status.APPROVED,
        post_due=due,
        notices=(PlannedNotice("post_deadline", due, None),),
    )
    taken = await file(
        db,
        category=Category.NORMAL,
        created=at(1),
        starts=at(4),
        notices=(PlannedNotice("t_minus_24h", due, None),),
    )
    claimed = {n.change_id: n for n in await db.repo.claim_due_notices(now=due, limit=10, lease=timedelta(1))}
    await step(db, decided.id, ChangeUpdate(at=due, post_state=PostState.APPROVED))
    async with db.sessions() as session, session.begin():  # another replica settled it
        await session.execute(
            sa.text("UPDATE notice SET state = 'sent' WHERE id = :id"), {"id": claimed[taken.id].id}
        )

    def settlement(change: Change, post_state: PostState | None = None) -> NoticeSettlement:
        return NoticeSettlement(
            claimed[change.id].id,
            change.id,
            sent=True,
            late=False,
            note=None,
            audit=[event(AuditAction.NOTICE_SENT_LATE, due, SYSTEM_ACTOR, marker=change.id)],
            intents=[Intent(IntentKind.MESSAGE, change.id, "CCHANGES", Text(text=f"notice {change.id}"))],
            post_state=post_state,
        )

    settled = await db.repo.settle_notices(
        [settlement(ordinary), settlement(decided, PostState.OVERDUE), settlement(taken)], now=due
    )
    assert settled == 1
    states = {c.id: [n.state for n in await db.repo.notices(c.id)] for c in (ordinary, decided, taken)}
    assert states == {ordinary.id: ["sent"], decided.id: ["sending"], taken.id: ["sent"]}
    after = await db.repo.get_change(decided.id)
    assert after is not None and after.post_state is PostState.APPROVED
    marked = [
        (await db.repo.get_change(c.id)).audit[-1].details.get("marker")  # type: ignore[union-attr]
        for c in (ordinary, decided, taken)
    ]
    assert marked == [ordinary.id, None, None]
    async with db.sessions() as session:
        texts = (await session.execute(sa.text("SELECT payload FROM outbox"))).scalars().all()
    sent_texts = {json.loads(t)["text"] if isinstance(t, str) else t["text"] for t in texts}
    assert f"notice {ordinary.id}" in sent_texts
    assert not {f"notice {decided.id}", f"notice {taken.id}"} & sent_texts
