"""Looking back and ahead for the CAB: the weekly agenda, the monthly and weekly reports
(with trends against the period before), and reports asked for by hand (their chart rendered
when sent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain import quorum
from domain.calendar import CalendarRange, days_range, local_midnight, report_range
from domain.calendar_policy import DAYS as DAY_NAMES
from domain.enums import Risk, Status
from domain.intents import Intent, IntentKind
from domain.listing import Counted
from domain.messages import CabAgendaPost, ReportPost
from domain.metrics import Metrics, compute_metrics, weekly_series
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change
from domain.ports import ChangeQuery, ListScope
from domain.read_models import CabAgenda, Report
from domain.usecases.base import CALENDAR_LIMIT, UseCase, post_slot
from domain.usecases.queries import scope_query

CAB_SHOWN = 20  # overdue reviews loaded for the CAB agenda (the rest are named by id)
WEEKLY_JOB = "weekly_report"  # its runs are claimed apart from the monthly report's


class Reports(UseCase):
    async def run_cab_agenda(self, *, catch_up: bool = False) -> bool:
        """Post this week's CAB agenda once, at the policy's day and time."""
        cab = self.policy.cab
        if not cab.enabled:
            return False
        now = self._clock.now()
        today, on_time = post_slot(now, at=cab.at, zone=ZoneInfo(cab.timezone))
        due = DAY_NAMES[today.weekday()] == cab.day and on_time
        if not await self._due("cab", today.isoformat(), due=due, now=now, catch_up=catch_up):
            return False
        channel = cab.channel or self.policy.channels.changes
        return await self._post_once(
            "cab",
            name="cab agenda",
            period=today.isoformat(),
            now=now,
            entry=AuditEntry(SYSTEM_ACTOR, AuditAction.CAB_AGENDA_POSTED, now, {"day": today.isoformat()}),
            intent=Intent(
                IntentKind.MESSAGE, None, channel, CabAgendaPost(), dedupe_key=f"cab:{today.isoformat()}"
            ),
        )

    async def cab_agenda(self) -> CabAgenda:
        now = self._clock.now()
        pending_query = scope_query(ListScope.PENDING, user="", now=now, limit=CALENDAR_LIMIT)
        role = self.policy.cab.role
        if role:
            read = await self._repo.list_changes(pending_query)
            pending = Counted.of(
                [
                    c
                    for c in read
                    if any(c.steps[i].role == role for i in quorum.open_steps(c.steps, c.approvals))
                ],
                complete=len(read) < CALENDAR_LIMIT,  # past the cap, more of the role's may wait
            )
        else:
            pending = await self._counted(pending_query)
        high = await self._counted(
            ChangeQuery(
                statuses=(Status.PENDING_APPROVAL, Status.APPROVED),
                starts_from=now,
                starts_before=now + timedelta(days=7),
                risks=(Risk.HIGH, Risk.CRITICAL),
                limit=CALENDAR_LIMIT,
            )
        )
        ended = await self._repo.list_changes(
            ChangeQuery(
                statuses=(Status.FAILED, Status.ROLLED_BACK, Status.CLOSED),
                starts_from=now - timedelta(days=8),
                starts_before=now,
                limit=CALENDAR_LIMIT,
            )
        )
        ended_badly = Counted.of(
            [
                c
                for c in ended
                if c.status is not Status.CLOSED
                or (c.outcome_notes and c.finished_at and c.finished_at >= now - timedelta(days=7))
            ],
            complete=len(ended) < CALENDAR_LIMIT,
        )
        overdue_ids = await self._repo.overdue_reviews(now=now)
        overdue = [await self._require(i) for i in overdue_ids[:CAB_SHOWN]]
        return CabAgenda(
            now,
            pending,
            high,
            ended_badly,
            Counted.of(overdue, total=len(overdue_ids)),
            overdue_review_ids=tuple(overdue_ids),
        )

    async def run_monthly_report(self, *, catch_up: bool = False) -> bool:
        """On the policy's day of the month, post last month's report once."""
        report = self.policy.report
        if not report.monthly:
            return False
        now = self._clock.now()
        zone = self.policy.zone
        today, on_time = post_slot(now, at=report.at, zone=zone)
        due = today.day == report.day and on_time
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        if not await self._due("report", last_month, due=due, now=now, catch_up=catch_up):
            return False
        span = report_range(last_month, now=now, zone=zone)
        assert span is not None
        first = span.start.astimezone(zone).date()
        month_before = local_midnight((first - timedelta(days=1)).replace(day=1), zone)
        return await self.request_report(
            span=span,
            channel=report.channel or self.policy.channels.changes,
            period_key=last_month,
            previous_start=month_before,
        )

    async def run_weekly_report(self, *, catch_up: bool = False) -> bool:
        """On the policy's weekday, post the seven days before once, with trends against the
        week before that."""
        weekly = self.policy.report.weekly
        if weekly is None:
            return False
        now = self._clock.now()
        zone = self.policy.zone
        today, on_time = post_slot(now, at=weekly.at, zone=zone)
        due = DAY_NAMES[today.weekday()] == weekly.day and on_time
        first = today - timedelta(days=7)
        if not await self._due(WEEKLY_JOB, first.isoformat(), due=due, now=now, catch_up=catch_up):
            return False
        last = today - timedelta(days=1)
        span = days_range(first, 7, zone, f"Weekly change report, {first:%a %d %b} – {last:%a %d %b %Y}")
        return await self.request_report(
            span=span,
            channel=weekly.channel or self.policy.report.channel or self.policy.channels.changes,
            period_key=first.isoformat(),
            previous_start=local_midnight(first - timedelta(days=7), zone),
            job=WEEKLY_JOB,
        )

    async def request_report(
        self,
        *,
        span: CalendarRange,
        channel: str,
        period_key: str | None = None,
        previous_start: datetime | None = None,
        job: str = "report",
    ) -> bool:
        """Queue a report post (its chart rendered when sent); scheduled ones run once per
        period. With `previous_start`, it shows trends against [previous_start, span.start)."""
        now = self._clock.now()
        payload = ReportPost(start=span.start, end=span.end, title=span.title, previous_start=previous_start)
        intent = Intent(
            IntentKind.REPORT,
            None,
            channel,
            payload,
            dedupe_key=f"{job}:{period_key}" if period_key else None,
        )
        entry = AuditEntry(
            SYSTEM_ACTOR, AuditAction.REPORT_POSTED, now, {"title": span.title, "channel": channel}
        )
        if period_key:
            return await self._post_once(job, period=period_key, now=now, entry=entry, intent=intent)
        await self._repo.append_audit(None, entry)
        await self._repo.add_intents([intent], now=now)
        self._notifier.wake()
        return True

    async def report(self, *, span: CalendarRange, previous: CalendarRange | None = None) -> Report:
        """The period's figures and weekly series; with `previous`, that period's figures too,
        for the trends."""
        changes = await self._repo.changes_with_history(start=span.start, end=span.end)
        metrics = await self._metrics(span, changes)
        before = None
        if previous is not None and previous.start < previous.end:
            earlier = await self._repo.changes_with_history(start=previous.start, end=previous.end)
            before = await self._metrics(previous, earlier)
        series = weekly_series(changes=changes, start=span.start, end=span.end)
        return Report(span.title, metrics, series, previous=before)

    async def _metrics(self, span: CalendarRange, changes: list[Change]) -> Metrics:
        """Seed 004's figures of `changes`; reviews count once they came due (by now)."""
        as_of = min(self._clock.now(), span.end)
        due, on_time = (0, 0)
        if as_of > span.start:
            due, on_time = await self._repo.review_counts(start=span.start, end=as_of)
        return compute_metrics(
            changes=changes,
            start=span.start,
            end=span.end,
            caused_incident=[c.id for c in changes if c.caused_incident],
            reviews_due=due,
            reviews_done_on_time=on_time,
            targets=self.policy.targets,
            now=as_of,
        )
