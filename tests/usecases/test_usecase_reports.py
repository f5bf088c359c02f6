"""The report, metrics, CAB agenda and incident links through ChangeService."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.calendar import CalendarRange
from domain.clock import FakeClock
from domain.enums import Category, Decision, Status
from domain.intents import IntentKind
from domain.messages import ReportPost
from domain.model import AuditAction, Change
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import (
    IMPLEMENTER,
    REQUESTER,
    change_form,
    low_risk_form,
    make_service,
    policy_with,
)
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

    span = CalendarRange(clock.now() - timedelta(days=7), clock.now() + timedelta(days=7), "Two weeks")
    report = await service.report(span=span)

    metrics = report.metrics
    assert (metrics.total, metrics.implemented, metrics.finished) == (4, 3, 3)
    assert (metrics.succeeded, metrics.failed) == (2, 1)
    assert metrics.by_status[Status.PENDING_APPROVAL] == 1
    assert metrics.by_category[Category.NORMAL] == 4
    assert metrics.success_rate is not None and round(metrics.success_rate) == 67
    assert (metrics.incidents_caused, metrics.incident_change_ids) == (1, [caused.id])
    assert metrics.failure_rate_count == 1  # the one that caused an incident; failing is not one
    assert (metrics.lead_time_count, metrics.implement_count) == (3, 3)
    assert metrics.implement_time_mean == timedelta(minutes=30)
    assert (metrics.reviews_due, metrics.reviews_done_on_time) == (0, 0)  # neither review is due yet
    clock.advance(timedelta(days=3))
    later = (await service.report(span=span)).metrics
    assert (later.reviews_due, later.reviews_done_on_time) == (2, 0)  # the failure's, the incident's
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
    asked, monthly = [i.message for i in repo.intents]
    assert isinstance(asked, ReportPost) and asked.previous is None  # asked for: no trends
    assert isinstance(monthly, ReportPost) and monthly.title == "Change report, November 2026"
    # trends against October, from its first midnight in London (BST: 23:00 UTC the day before)
    assert monthly.previous_start == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)


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


WEEKLY = 'report:\n  weekly: {day: mon, at: "09:00", channel: CWEEKLY}\n'


async def test_the_weekly_report_posts_the_week_before_once_with_its_trends(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = make_service(repo, clock, policy=policy_with(WEEKLY))
    await carried_out(service, clock, ProgressAction.COMPLETE, n=0)  # Tue 24 Nov: last week
    await carried_out(service, clock, ProgressAction.ROLLBACK, n=1)
    clock.set(datetime(2026, 11, 16, 12, tzinfo=UTC))
    await carried_out(service, clock, ProgressAction.COMPLETE, n=2)  # Tue 17 Nov: the week before

    clock.set(datetime(2026, 11, 30, 8, 59, tzinfo=UTC))  # Monday 08:59 in London
    assert await service.run_weekly_report() is False
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    assert await service.run_weekly_report() is True
    assert await service.run_weekly_report() is False
    restarted = make_service(repo, clock, policy=policy_with(WEEKLY))  # a restart, or another replica
    assert await restarted.run_weekly_report(catch_up=True) is False
    assert await restarted.run_weekly_report() is False
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert await service.run_weekly_report() is False  # Tuesday

    [intent] = [i for i in repo.intents if i.kind is IntentKind.REPORT]
    assert intent.channel == "CWEEKLY" and intent.dedupe_key == "weekly_report:2026-11-23"
    payload = intent.message
    assert isinstance(payload, ReportPost)
    assert (payload.start, payload.end) == (
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    assert payload.title == "Weekly change report, Mon 23 Nov – Sun 29 Nov 2026"
    assert payload.previous_start == datetime(2026, 11, 16, tzinfo=UTC)
    report = await service.report(span=payload.span, previous=payload.previous)
    assert report.metrics.implemented == 2 and report.metrics.rollback_rate == 50.0
    assert report.previous is not None and report.previous.implemented == 1
    assert report.previous.success_rate == 100.0

    clock.set(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))  # the next Monday: the next week
    assert await service.run_weekly_report() is True
    assert [i.dedupe_key for i in repo.intents if i.kind is IntentKind.REPORT][
        -1
    ] == "weekly_report:2026-11-30"


async def test_a_weekly_report_missed_while_down_is_caught_up_at_start_within_grace(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = make_service(repo, clock, policy=policy_with(WEEKLY))
    assert await service.run_weekly_report(catch_up=True) is False  # a new database missed nothing
    clock.set(datetime(2026, 11, 30, 13, 0, tzinfo=UTC))  # down through 09:00, back at 13:00
    assert await make_service(repo, clock, policy=policy_with(WEEKLY)).run_weekly_report(catch_up=True)
    clock.set(datetime(2026, 12, 7, 16, 0, tzinfo=UTC))  # back at 16:00: past the grace
    assert (
        await make_service(repo, clock, policy=policy_with(WEEKLY)).run_weekly_report(catch_up=True) is False
    )


async def test_no_weekly_report_unless_the_policy_asks(service: ChangeService, clock: FakeClock) -> None:
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    assert await service.run_weekly_report() is False
