"""The change use cases. Slack handlers and scheduler jobs both call these; storage,
Slack and time come in through Protocols so this module stays pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain import first_start, journal, quorum
from domain.calendar import CalendarRange, days_range, report_range, scheduled_moment
from domain.calendar_policy import DAYS as DAY_NAMES
from domain.calendar_policy import BlackoutHit, Freeze, blackout_periods
from domain.clock import Clock
from domain.emergency import (
    EmergencyForm,
)
from domain.enums import Decision, Risk, Status
from domain.intake import ChangeForm
from domain.intents import Intent, IntentKind
from domain.limits import MAX_REASON
from domain.listing import Counted, Page
from domain.metrics import compute_metrics, weekly_series
from domain.model import (
    SYSTEM_ACTOR,
    AuditAction,
    AuditEntry,
    Change,
    PostState,
)
from domain.policy import Policy
from domain.ports import (
    ChangeQuery,
    ChangeRepository,
    Directory,
    ListScope,
    Notifier,
)
from domain.read_models import (
    ActionOutcome,
    CabAgenda,
    CalendarView,
    DecisionOutcome,
    FeedData,
    HomeView,
    ProgressAction,
    Report,
)
from domain.usecases.approvals import Approvals
from domain.usecases.base import CALENDAR_LIMIT, DIGEST_GRACE, Deps, UseCase
from domain.usecases.emergency import Emergency
from domain.usecases.intake import Intake
from domain.usecases.notices import Notices
from domain.usecases.progress import Progress
from domain.usecases.queries import Queries, scope_query
from domain.usecases.reviews import Reviews

FEED_LIMIT = 5000  # changes in the ICS feed; past it the feed says how many it left out
CAB_SHOWN = 20  # overdue reviews loaded for the CAB agenda (the rest are named by id)


class ChangeService(UseCase):
    def __init__(
        self,
        *,
        repository: ChangeRepository,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
        policy: Policy,
        change_events: bool = False,
    ) -> None:
        deps = Deps(
            repository=repository,
            directory=directory,
            notifier=notifier,
            clock=clock,
            policy=policy,
            change_events=change_events,
        )
        super().__init__(deps)
        self._intake = Intake(deps)
        self._queries = Queries(deps)
        self._approvals = Approvals(deps)
        self._reviews = Reviews(deps)
        self._progress = Progress(deps)
        self._emergency = Emergency(deps)
        self._notices = Notices(deps)

    # --- intake -----------------------------------------------------------------
    async def submit_change(self, *, form: ChangeForm, requester: str, team_id: str | None = None) -> Change:
        return await self._intake.submit_change(form=form, requester=requester, team_id=team_id)

    async def reschedule(
        self, *, change_id: str, user: str, starts_at: int | None, ends_at: int | None
    ) -> ActionOutcome:
        return await self._intake.reschedule(
            change_id=change_id, user=user, starts_at=starts_at, ends_at=ends_at
        )

    # --- decisions --------------------------------------------------------------
    async def check_decision(self, *, change_id: str, user: str) -> quorum.Refusal | None:
        return await self._approvals.check_decision(change_id=change_id, user=user)

    async def decide(
        self,
        *,
        change_id: str,
        user: str,
        decision: Decision,
        reason: str = "",
        team_id: str | None = None,
    ) -> DecisionOutcome:
        return await self._approvals.decide(
            change_id=change_id, user=user, decision=decision, reason=reason, team_id=team_id
        )

    async def check_post_decision(self, *, change_id: str, user: str) -> quorum.Refusal | None:
        return await self._approvals.check_post_decision(change_id=change_id, user=user)

    async def post_decide(
        self, *, change_id: str, user: str, decision: Decision, reason: str = "", team_id: str | None = None
    ) -> DecisionOutcome:
        return await self._approvals.post_decide(
            change_id=change_id, user=user, decision=decision, reason=reason, team_id=team_id
        )

    async def approvers_to_notify(self, *, change_id: str) -> list[str]:
        return await self._approvals.approvers_to_notify(change_id=change_id)

    async def post_approvers_to_notify(self, *, change_id: str) -> list[str]:
        return await self._approvals.post_approvers_to_notify(change_id=change_id)

    async def role_members(self, *, role: str) -> list[str]:
        return await self._approvals.role_members(role=role)

    # --- reviews ----------------------------------------------------------------
    async def submit_review(self, *, change_id: str, user: str, answers: dict[str, str]) -> ActionOutcome:
        return await self._reviews.submit_review(change_id=change_id, user=user, answers=answers)

    async def link_incident(self, *, change_id: str, user: str, incident: str) -> ActionOutcome:
        return await self._reviews.link_incident(change_id=change_id, user=user, incident=incident)

    # --- reading ----------------------------------------------------------------
    async def get_change(self, *, change_id: str, history: bool = True) -> Change:
        return await self._queries.get_change(change_id=change_id, history=history)

    async def list_changes(self, *, scope: ListScope, user: str, page: int = 1) -> Page:
        return await self._queries.list_changes(scope=scope, user=user, page=page)

    # --- implementation ---------------------------------------------------------
    async def record_progress(
        self,
        *,
        change_id: str,
        user: str,
        action: ProgressAction,
        notes: str = "",
        team_id: str | None = None,
        override: str = "",
    ) -> ActionOutcome:
        return await self._progress.record_progress(
            change_id=change_id, user=user, action=action, notes=notes, team_id=team_id, override=override
        )

    async def cancel(self, *, change_id: str, user: str, reason: str = "") -> ActionOutcome:
        return await self._progress.cancel(change_id=change_id, user=user, reason=reason)

    # --- emergencies ------------------------------------------------------------
    async def declare_emergency(
        self,
        *,
        form: EmergencyForm,
        requester: str,
        team_id: str | None = None,
        source_link: str | None = None,
    ) -> Change:
        return await self._emergency.declare_emergency(
            form=form, requester=requester, team_id=team_id, source_link=source_link
        )

    async def assign_on_call(
        self, *, change_id: str, users: Sequence[str], source: str, reason: str | None
    ) -> Change:
        return await self._emergency.assign_on_call(
            change_id=change_id, users=users, source=source, reason=reason
        )

    # --- the timeline -----------------------------------------------------------
    async def seconds_to_next_notice(self) -> float | None:
        return await self._notices.seconds_to_next_notice()

    async def process_due_notices(self, *, limit: int = 100) -> int:
        return await self._notices.process_due_notices(limit=limit)

    # --- CAB and reports ----------------------------------------------------------
    async def run_cab_agenda(self, *, catch_up: bool = False) -> bool:
        """Post this week's CAB agenda once, at the policy's day and time."""
        cab = self.policy.cab
        if not cab.enabled:
            return False
        now = self._clock.now()
        zone = ZoneInfo(cab.timezone)
        today = now.astimezone(zone).date()
        moment = scheduled_moment(today, int(cab.at[:2]), int(cab.at[3:]), zone)
        due = DAY_NAMES[today.weekday()] == cab.day and moment <= now < moment + DIGEST_GRACE
        period = today.isoformat() if due else None
        if catch_up and await first_start.baseline(self._repo, job="cab", due=period, now=now):
            return False
        if not due:
            return False
        channel = cab.channel or self.policy.channels.changes
        claimed = await self._repo.claim_job_run(
            job="cab",
            period=today.isoformat(),
            now=now,
            audit=[AuditEntry(SYSTEM_ACTOR, AuditAction.CAB_AGENDA_POSTED, now, {"day": today.isoformat()})],
            intents=[
                Intent(
                    IntentKind.MESSAGE,
                    None,
                    channel,
                    {"template": "cab_agenda"},
                    dedupe_key=f"cab:{today.isoformat()}",
                )
            ],
        )
        journal.job_run("cab agenda", today.isoformat(), claimed=claimed)
        if claimed:
            self._notifier.wake()
        return claimed

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
        today = now.astimezone(zone).date()
        moment = scheduled_moment(today, int(report.at[:2]), int(report.at[3:]), zone)
        due = today.day == report.day and moment <= now < moment + DIGEST_GRACE
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        period = last_month if due else None
        if catch_up and await first_start.baseline(self._repo, job="report", due=period, now=now):
            return False
        if not due:
            return False
        span = report_range(last_month, now=now, zone=zone)
        assert span is not None
        return await self.request_report(
            span=span, channel=report.channel or self.policy.channels.changes, period_key=last_month
        )

    async def request_report(
        self, *, span: CalendarRange, channel: str, period_key: str | None = None
    ) -> bool:
        """Queue a report post (its chart rendered when sent); scheduled ones run once per period."""
        now = self._clock.now()
        payload = {
            "template": "report",
            "start": span.start.isoformat(),
            "end": span.end.isoformat(),
            "title": span.title,
        }
        intent = Intent(
            IntentKind.REPORT,
            None,
            channel,
            payload,
            dedupe_key=f"report:{period_key}" if period_key else None,
        )
        audit = [
            AuditEntry(
                SYSTEM_ACTOR, AuditAction.REPORT_POSTED, now, {"title": span.title, "channel": channel}
            )
        ]
        if period_key:
            claimed = await self._repo.claim_job_run(
                job="report", period=period_key, now=now, audit=audit, intents=[intent]
            )
            journal.job_run("report", period_key, claimed=claimed)
        else:
            await self._repo.append_audit(None, audit[0])
            await self._repo.add_intents([intent], now=now)
            claimed = True
        if claimed:
            self._notifier.wake()
        return claimed

    async def report(self, *, span: CalendarRange) -> Report:
        now = self._clock.now()
        changes = await self._repo.changes_with_history(start=span.start, end=span.end)
        due, on_time = await self._repo.review_counts(start=span.start, end=span.end)
        caused = [c.id for c in changes if c.caused_incident]
        metrics = compute_metrics(
            changes=changes,
            start=span.start,
            end=span.end,
            caused_incident=caused,
            reviews_due=due,
            reviews_done_on_time=on_time,
            targets=self.policy.targets,
            now=min(now, span.end),
        )
        return Report(span.title, metrics, weekly_series(changes=changes, start=span.start, end=span.end))

    # --- freezes -----------------------------------------------------------------
    async def start_freeze(self, *, user: str, reason: str) -> tuple[Freeze | None, str | None]:
        """An ad-hoc freeze for the roles the policy allows; (freeze, refusal)."""
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        reason = reason.strip()[:MAX_REASON]
        payload = {"template": "freeze", "started": True, "by": user, "reason": reason}
        freeze = await self._repo.start_freeze(
            reason=reason,
            user=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.FREEZE_STARTED, now, {"reason": reason})],
            intents=[Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload)],
        )
        if freeze is None:
            return None, "a change freeze is already on: `/change freeze end` lifts it"
        journal.freeze(freeze, by=user)
        self._notifier.wake()
        return freeze, None

    async def end_freeze(self, *, user: str) -> tuple[Freeze | None, str | None]:
        refusal = await self._freeze_refusal(user)
        if refusal:
            return None, refusal
        now = self._clock.now()
        payload = {"template": "freeze", "started": False, "by": user, "reason": ""}
        freeze = await self._repo.end_freeze(
            user=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.FREEZE_ENDED, now, {})],
            intents=[Intent(IntentKind.MESSAGE, None, self.policy.channels.changes, payload)],
        )
        if freeze is None:
            return None, "there is no change freeze on"
        journal.freeze(freeze, by=user)
        self._notifier.wake()
        return freeze, None

    async def _freeze_refusal(self, user: str) -> str | None:
        if await self._in_roles(user, self.policy.freeze_roles):
            return None
        roles = ", ".join(self.policy.freeze_roles) or "nobody"
        return f"only these roles can declare or lift a change freeze: {roles}"

    async def active_freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        return await self._repo.freezes(start=start, end=end)

    # --- calendar and digest ----------------------------------------------------
    async def calendar(self, *, span: CalendarRange) -> CalendarView:
        now = self._clock.now()
        active = (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS)
        scheduled = await self._counted(
            ChangeQuery(
                statuses=(*active, Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK),
                starts_from=span.start,
                starts_before=span.end,
                limit=CALENDAR_LIMIT,
            )
        )
        # The other sections are `/change list` scopes, so "the rest" is one command away.
        awaiting, in_progress, overdue, post_overdue = [
            await self._counted(scope_query(scope, user="", now=now, limit=CALENDAR_LIMIT))
            for scope in (ListScope.PENDING, ListScope.IN_PROGRESS, ListScope.OVERDUE, ListScope.POST_OVERDUE)
        ]
        return CalendarView(
            span,
            now,
            scheduled,
            awaiting,
            in_progress,
            overdue,
            post_overdue,
            freezes=await self._repo.freezes(start=span.start, end=span.end),
            blackouts=self._blackouts_between(span.start, span.end),
        )

    def _blackouts_between(self, start: datetime, end: datetime) -> list[BlackoutHit]:
        hits = [
            BlackoutHit(blackout.name, s, e)
            for blackout in self.policy.blackouts
            for s, e in blackout_periods(blackout, zone=self.policy.zone, start=start, end=end)
        ]
        return sorted(hits, key=lambda hit: hit.start)

    async def open_home(self, *, user: str) -> None:
        """The user opened the App Home: remember them (so it follows their changes) and publish it."""
        await self._repo.home_opened(
            user=user, now=self._clock.now(), intents=[Intent(IntentKind.HOME, None, user)]
        )
        self._notifier.wake()

    async def users_touched(self, *, change_id: str) -> list[str]:
        """Whose App Home shows this change: requester, implementer, its approvers."""
        change = await self._require(change_id)
        users = {change.requester, change.implementer}
        for step in (*change.steps, *change.post_steps):
            users |= await self._directory.expand(step.members)
        return sorted(users)

    async def calendar_feed(self) -> FeedData:
        """What the ICS feed carries: the last month and the next six."""
        now = self._clock.now()
        start, end = now - timedelta(days=31), now + timedelta(days=183)
        changes = await self._counted(ChangeQuery(starts_from=start, starts_before=end, limit=FEED_LIMIT))
        return FeedData(
            now,
            end,
            changes,
            self._blackouts_between(now - timedelta(days=1), end),
            await self._repo.freezes(start=start, end=end),
        )

    async def home(self, *, user: str) -> HomeView:
        """The App Home: my changes, what waits for me, the week ahead, blackouts."""
        now = self._clock.now()
        mine = await self._counted(scope_query(ListScope.MINE, user=user, now=now, limit=15))
        pending = await self._repo.list_changes(
            scope_query(ListScope.PENDING, user=user, now=now, limit=CALENDAR_LIMIT)
        )
        post_open = await self._repo.list_changes(
            ChangeQuery(post_states=(PostState.PENDING, PostState.OVERDUE), limit=CALENDAR_LIMIT)
        )
        awaiting: list[Change] = []
        for change in pending:
            if await self.check_decision(change_id=change.id, user=user) is None:
                awaiting.append(change)
        for change in post_open:
            if (
                change not in awaiting
                and await self.check_post_decision(change_id=change.id, user=user) is None
            ):
                awaiting.append(change)
        upcoming = await self._counted(
            ChangeQuery(
                statuses=(Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS),
                starts_from=now,
                starts_before=now + timedelta(days=7),
                limit=30,
            )
        )
        horizon = now + timedelta(days=14)
        # Only the first CALENDAR_LIMIT open CRs are checked: past that, "at least" so many.
        checked_all = len(pending) < CALENDAR_LIMIT and len(post_open) < CALENDAR_LIMIT
        return HomeView(
            user,
            now,
            mine,
            Counted.of(awaiting, complete=checked_all).shown(20),
            upcoming,
            self._blackouts_between(now, horizon),
            await self._repo.freezes(start=now, end=horizon),
        )

    async def run_digest(self, *, catch_up: bool = False) -> bool:
        """Post today's digest once: the cron job and the start-up catch-up both call this.
        The catch-up on a new database posts none (see domain/first_start.py)."""
        digest = self.policy.digest
        if not digest.enabled:
            return False
        now = self._clock.now()
        zone = self.policy.zone
        today = now.astimezone(zone).date()
        moment = scheduled_moment(today, digest.hour, digest.minute, zone)
        due = moment <= now < moment + DIGEST_GRACE
        period = today.isoformat() if due else None
        if catch_up and await first_start.baseline(self._repo, job="digest", due=period, now=now):
            return False
        if not due:
            return False
        span = days_range(today, 1 + digest.days_ahead, zone, f"Change calendar for {today:%a %d %b}")
        payload = {
            "template": "digest",
            "start": span.start.isoformat(),
            "end": span.end.isoformat(),
            "title": span.title,
        }
        claimed = await self._repo.claim_job_run(
            job="digest",
            period=today.isoformat(),
            now=now,
            audit=[AuditEntry(SYSTEM_ACTOR, AuditAction.DIGEST_POSTED, now, {"day": today.isoformat()})],
            intents=[
                Intent(
                    IntentKind.MESSAGE,
                    None,
                    self.policy.channels.changes,
                    payload,
                    dedupe_key=f"digest:{today.isoformat()}",
                )
            ],
        )
        journal.job_run("digest", today.isoformat(), claimed=claimed)
        if claimed:
            self._notifier.wake()
        return claimed
