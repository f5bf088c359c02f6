"""The report, metrics, CAB agenda and incident links through ChangeService."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.calendar import CalendarRange
from domain.clock import FakeClock
from domain.enums import Category, Decision, Status
from domain.intents import IntentKind
from domain.model import AuditAction, Change
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import IMPLEMENTER, REQUESTER, change_form, low_risk_form
from tests.support.memory_repository import MemoryChangeRepository

SERVICES = ["api-server", "database", "redis-cache", "kubernetes"]


async def carried_out(service: ChangeService, clock: FakeClock, action: ProgressAction, *, n: int) -> Change:
    """A pre-approved change (a day ahead, on its own service) started and ended with `action`."""
    change = await service.submit_change(
        form=low_risk_form(
            clock, implementer=IMPLEMENTER, services=[SERVICES[n]], starts_in=timedelta(days=1)
        ),
        requester=REQUESTER,
    )
    now = clock.now()
    clock.set(change.draft.starts_at)
    await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START)
    clock.advance(timedelta(minutes=30))
    outcome = await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=action, notes="Notes"
    )
    assert outcome.refusal is None
    clock.set(now)
    return outcome.change


async def test_the_report_counts_outcomes_and_incidents(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    completed = await carried_out(service, clock, ProgressAction.COMPLETE, n=0)
    await carried_out(service, clock, ProgressAction.FAIL, n=1)
    caused = await carried_out(service, clock, ProgressAction.COMPLETE, n=2)
    pending = await service.submit_change(
        form=change_form(clock, services=["kubernetes"], starts_in=timedelta(days=3)), requester=REQUESTER
    )
    clock.advance(timedelta(days=2))
    linked = await service.link_incident(change_id=caused.id, user=REQUESTER, incident="INC-7")
    never_started = await service.link_incident(change_id=pending.id, user=REQUESTER, incident="INC-8")
    assert linked.refusal is None and never_started.refusal is not None

    report = await service.report(
        span=CalendarRange(clock.now() - timedelta(days=7), clock.now() + timedelta(days=7), "Two weeks")
    )

    metrics = report.metrics
    assert (metrics.total, metrics.finished, metrics.succeeded, metrics.failed) == (4, 3, 2, 1)
    assert metrics.by_status[Status.PENDING_APPROVAL] == 1
    assert metrics.by_category[Category.NORMAL] == 4
    assert metrics.success_rate is not None and round(metrics.success_rate) == 67
    assert (metrics.incidents_caused, metrics.incident_change_ids) == (1, [caused.id])
    assert metrics.failure_rate_count == 2
    assert (metrics.lead_time_count, metrics.implement_count) == (3, 3)
    assert metrics.implement_time_mean == timedelta(minutes=30)
    assert (metrics.reviews_due, metrics.reviews_done_on_time) == (2, 0)  # the failure's, the incident's
    assert await repo.caused_incidents([completed.id, caused.id, pending.id]) == [caused.id]
    stored = await service.get_change(change_id=caused.id)
    assert stored.review is not None and stored.review.reason == "it caused an incident"


async def test_review_compliance_counts_reviews_written_by_their_due_time(
    service: ChangeService, clock: FakeClock
) -> None:
    failed = await carried_out(service, clock, ProgressAction.FAIL, n=0)
    late = await carried_out(service, clock, ProgressAction.FAIL, n=1)
    clock.advance(timedelta(days=2))
    await service.submit_review(change_id=failed.id, user=IMPLEMENTER, answers={"result": "failed"})
    clock.advance(timedelta(days=2))
    await service.submit_review(change_id=late.id, user=IMPLEMENTER, answers={"result": "failed"})

    report = await service.report(
        span=CalendarRange(clock.now() - timedelta(days=10), clock.now(), "Ten days")
    )

    assert (report.metrics.reviews_due, report.metrics.reviews_done_on_time) == (2, 1)
    assert report.metrics.review_compliance == 50.0


async def test_a_report_is_queued_on_request_and_the_monthly_one_once(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    span = CalendarRange(clock.now() - timedelta(days=7), clock.now(), "Last week")

    assert await service.request_report(span=span, channel="CREPORTS") is True
    clock.set(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert await service.run_monthly_report() is True
    assert await service.run_monthly_report() is False

    assert [(i.kind, i.channel, i.change_id) for i in repo.intents] == [
        (IntentKind.REPORT, "CREPORTS", None),
        (IntentKind.REPORT, "CCHANGES", None),
    ]
    assert [(r.change_id, r.entry.action) for r in repo.audit_log] == [(None, AuditAction.REPORT_POSTED)] * 2


async def test_the_cab_agenda_lists_what_waits_and_what_went_wrong(
    service: ChangeService, clock: FakeClock
) -> None:
    failed = await carried_out(service, clock, ProgressAction.FAIL, n=0)
    high = await service.submit_change(
        form=change_form(clock, impact="high", services=["database"], starts_in=timedelta(days=3)),
        requester=REQUESTER,
    )
    medium = await service.submit_change(
        form=change_form(clock, services=["redis-cache"], starts_in=timedelta(days=10)), requester=REQUESTER
    )
    await service.decide(change_id=high.id, user="ULEAD1", decision=Decision.APPROVE)
    clock.advance(timedelta(days=2, hours=8))  # Wednesday 15:00 UTC: the CAB meets

    agenda = await service.cab_agenda()
    posted = await service.run_cab_agenda()
    again = await service.run_cab_agenda()

    assert [c.id for c in agenda.awaiting] == [high.id, medium.id]
    assert [c.id for c in agenda.high_risk] == [high.id]
    assert [c.id for c in agenda.ended_badly] == [failed.id]
    assert list(agenda.overdue_reviews) == []  # its review is due on Thursday
    assert (posted, again) == (True, False)
    clock.advance(timedelta(days=1))
    assert (await service.cab_agenda()).overdue_review_ids == (failed.id,)
