"""The one entry point to the change use cases. Slack handlers, scheduler jobs, adapters and
tooling call `ChangeService`; each method hands over to the feature module that holds the
use case (`domain/usecases/<feature>.py`), all sharing one set of ports, clock and policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain import quorum
from domain.calendar import CalendarRange
from domain.calendar_policy import Freeze
from domain.clock import Clock
from domain.emergency import EmergencyForm
from domain.enums import Decision
from domain.gates import GateAnswer, PipelineEvent
from domain.intake import ChangeForm
from domain.listing import Page
from domain.model import Change, ChangeSource
from domain.policy import Policy
from domain.ports import ChangeRepository, Directory, ListScope, Notifier
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
from domain.usecases.base import Deps
from domain.usecases.calendar import Calendar
from domain.usecases.emergency import Emergency
from domain.usecases.gates import Gates
from domain.usecases.intake import Intake
from domain.usecases.notices import Notices
from domain.usecases.progress import Progress
from domain.usecases.queries import Queries
from domain.usecases.reports import Reports
from domain.usecases.reviews import Reviews


class ChangeService:
    """The use cases behind one door; storage, Slack and time come in through the ports."""

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
            change_events=change_events,  # PagerDuty Change Events configured
        )
        self._repo = repository
        self.policy = policy
        self._intake = Intake(deps)
        self._queries = Queries(deps)
        self._approvals = Approvals(deps)
        self._reviews = Reviews(deps)
        self._progress = Progress(deps)
        self._emergency = Emergency(deps)
        self._notices = Notices(deps)
        self._calendar = Calendar(deps, approvals=self._approvals)
        self._reports = Reports(deps)
        self._gates = Gates(deps, intake=self._intake, progress=self._progress)

    # --- intake (usecases/intake.py) and reading (usecases/queries.py) ---------
    async def submit_change(self, *, form: ChangeForm, requester: str, team_id: str | None = None) -> Change:
        return await self._intake.submit_change(form=form, requester=requester, team_id=team_id)

    async def reschedule(
        self, *, change_id: str, user: str, starts_at: int | None, ends_at: int | None
    ) -> ActionOutcome:
        return await self._intake.reschedule(
            change_id=change_id, user=user, starts_at=starts_at, ends_at=ends_at
        )

    async def get_change(self, *, change_id: str, history: bool = True) -> Change:
        return await self._queries.get_change(change_id=change_id, history=history)

    async def list_changes(self, *, scope: ListScope, user: str, page: int = 1) -> Page:
        return await self._queries.list_changes(scope=scope, user=user, page=page)

    # --- decisions (usecases/approvals.py) -------------------------------------
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

    # --- implementation (usecases/progress.py) ---------------------------------
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

    # --- reviews (usecases/reviews.py) -----------------------------------------
    async def submit_review(self, *, change_id: str, user: str, answers: dict[str, str]) -> ActionOutcome:
        return await self._reviews.submit_review(change_id=change_id, user=user, answers=answers)

    async def link_incident(self, *, change_id: str, user: str, incident: str) -> ActionOutcome:
        return await self._reviews.link_incident(change_id=change_id, user=user, incident=incident)

    # --- emergencies (usecases/emergency.py) -----------------------------------
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

    # --- the timeline (usecases/notices.py) ------------------------------------
    async def seconds_to_next_notice(self) -> float | None:
        return await self._notices.seconds_to_next_notice()

    async def process_due_notices(self, *, limit: int = 100) -> int:
        return await self._notices.process_due_notices(limit=limit)

    # --- freezes, calendar, App Home, feed, digest (usecases/calendar.py) ------
    async def start_freeze(self, *, user: str, reason: str) -> tuple[Freeze | None, str | None]:
        return await self._calendar.start_freeze(user=user, reason=reason)

    async def end_freeze(self, *, user: str) -> tuple[Freeze | None, str | None]:
        return await self._calendar.end_freeze(user=user)

    async def active_freezes(self, *, start: datetime, end: datetime) -> list[Freeze]:
        return await self._calendar.active_freezes(start=start, end=end)

    async def calendar(self, *, span: CalendarRange) -> CalendarView:
        return await self._calendar.calendar(span=span)

    async def open_home(self, *, user: str) -> None:
        await self._calendar.open_home(user=user)

    async def users_touched(self, *, change_id: str) -> list[str]:
        return await self._calendar.users_touched(change_id=change_id)

    async def calendar_feed(self) -> FeedData:
        return await self._calendar.calendar_feed()

    async def home(self, *, user: str) -> HomeView:
        return await self._calendar.home(user=user)

    async def run_digest(self, *, catch_up: bool = False) -> bool:
        return await self._calendar.run_digest(catch_up=catch_up)

    # --- CAB and reports (usecases/reports.py) ---------------------------------
    async def run_cab_agenda(self, *, catch_up: bool = False) -> bool:
        return await self._reports.run_cab_agenda(catch_up=catch_up)

    async def cab_agenda(self) -> CabAgenda:
        return await self._reports.cab_agenda()

    async def run_monthly_report(self, *, catch_up: bool = False) -> bool:
        return await self._reports.run_monthly_report(catch_up=catch_up)

    async def request_report(
        self, *, span: CalendarRange, channel: str, period_key: str | None = None
    ) -> bool:
        return await self._reports.request_report(span=span, channel=channel, period_key=period_key)

    async def report(self, *, span: CalendarRange) -> Report:
        return await self._reports.report(span=span)

    # --- deploy pipelines (usecases/gates.py) -----------------------------------
    async def gate(self, *, change_id: str, service: str | None = None, asked_by: str) -> GateAnswer:
        return await self._gates.gate(change_id=change_id, service=service, asked_by=asked_by)

    async def file_change(
        self, *, form: ChangeForm, requester: str, source: ChangeSource, team_id: str | None = None
    ) -> Change:
        return await self._gates.file_change(form=form, requester=requester, source=source, team_id=team_id)

    async def report_event(
        self, *, change_id: str, event: PipelineEvent, notes: str, actor: str
    ) -> ActionOutcome:
        return await self._gates.report_event(change_id=change_id, event=event, notes=notes, actor=actor)
