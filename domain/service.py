"""The one entry point to the change use cases. Slack handlers, scheduler jobs, adapters and
tooling call `ChangeService`; each of its methods is the use case itself, bound from the
feature module that holds it (`domain/usecases/<feature>.py`), all sharing one set of
ports, clock and policy. It only delegates: there is no code here to keep in step."""

from __future__ import annotations

from domain.clock import Clock
from domain.policy import Policy
from domain.ports import ChangeRepository, Directory, Notifier
from domain.usecases.approvals import Approvals
from domain.usecases.base import Deps
from domain.usecases.calendar import Calendar
from domain.usecases.delegation import Delegations
from domain.usecases.editing import Editing
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
        self._repo, self.policy = repository, policy
        emergency, queries, approvals = Emergency(deps), Queries(deps), Approvals(deps)
        intake = Intake(deps, declare=emergency.declare_from_form)  # category emergency: declared
        reviews, progress, editing = Reviews(deps), Progress(deps), Editing(deps)
        delegations = Delegations(deps)
        notices, calendar, reports = Notices(deps), Calendar(deps, approvals=approvals), Reports(deps)
        gates = Gates(deps, intake=intake, progress=progress)
        self._bind_filing(intake=intake, editing=editing, queries=queries, gates=gates)
        self._bind_decisions(
            approvals=approvals,
            progress=progress,
            reviews=reviews,
            emergency=emergency,
            delegations=delegations,
        )
        self._bind_schedule(notices=notices, calendar=calendar, reports=reports)

    def _bind_filing(self, *, intake: Intake, editing: Editing, queries: Queries, gates: Gates) -> None:
        # --- intake (usecases/intake.py), corrections (usecases/editing.py), reading (usecases/queries.py)
        self.submit_change = intake.submit_change
        self.reschedule = intake.reschedule
        self.check_edit = editing.check_edit
        self.edit_change = editing.edit_change
        self.request_changes = editing.request_changes
        self.get_change = queries.get_change
        self.list_changes = queries.list_changes

        # --- deploy pipelines (usecases/gates.py) ------------------------------
        self.gate = gates.gate
        self.file_change = gates.file_change
        self.report_event = gates.report_event

    def _bind_decisions(
        self,
        *,
        approvals: Approvals,
        progress: Progress,
        reviews: Reviews,
        emergency: Emergency,
        delegations: Delegations,
    ) -> None:
        # --- decisions (usecases/approvals.py) ---------------------------------
        self.check_decision = approvals.check_decision
        self.decide = approvals.decide
        self.check_post_decision = approvals.check_post_decision
        self.post_decide = approvals.post_decide
        self.approvers_to_notify = approvals.approvers_to_notify
        self.post_approvers_to_notify = approvals.post_approvers_to_notify
        self.role_members, self.who_can_approve = approvals.role_members, approvals.who_can_approve
        self.delegate, self.end_delegation = delegations.delegate, delegations.end_delegation  # delegation.py

        # --- implementation (usecases/progress.py) -----------------------------
        self.record_progress = progress.record_progress
        self.cancel = progress.cancel

        # --- reviews (usecases/reviews.py) -------------------------------------
        self.submit_review = reviews.submit_review
        self.link_incident = reviews.link_incident

        # --- emergencies (usecases/emergency.py) -------------------------------
        self.declare_emergency = emergency.declare_emergency
        self.assign_on_call = emergency.assign_on_call
        self.acknowledge = emergency.acknowledge

    def _bind_schedule(self, *, notices: Notices, calendar: Calendar, reports: Reports) -> None:
        # --- the timeline (usecases/notices.py) --------------------------------
        self.seconds_to_next_notice = notices.seconds_to_next_notice
        self.process_due_notices = notices.process_due_notices
        self.quiet_holds = notices.quiet_holds

        # --- freezes, calendar, App Home, feed, digest (usecases/calendar.py) --
        self.start_freeze, self.end_freeze = calendar.start_freeze, calendar.end_freeze
        self.end_due_freezes = calendar.end_due_freezes
        self.active_freezes, self.card_freezes = calendar.active_freezes, calendar.card_freezes
        self.calendar = calendar.calendar
        self.open_home = calendar.open_home
        self.users_touched = calendar.users_touched
        self.calendar_feed = calendar.calendar_feed
        self.home = calendar.home
        self.run_digest = calendar.run_digest

        # --- CAB and reports (usecases/reports.py) -----------------------------
        self.run_cab_agenda = reports.run_cab_agenda
        self.cab_agenda = reports.cab_agenda
        self.run_monthly_report = reports.run_monthly_report
        self.run_weekly_report = reports.run_weekly_report
        self.request_report = reports.request_report
        self.report = reports.report
