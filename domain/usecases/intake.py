"""Filing a change and moving its window: validate the form, check the schedule (windows,
blackouts, freezes) and overlapping CRs, route the approval steps, plan the timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from domain.authz import before_start_refusal, voided_entry, voids_approval
from domain.calendar_policy import Freeze, schedule_problems
from domain.conflicts import OPEN_FOR_CONFLICTS, Conflict, find_conflicts
from domain.enums import Category, Risk, Status
from domain.errors import ConflictsFound
from domain.intake import ChangeForm, IntakeRejected, validate_form, validate_window
from domain.intents import Intent, IntentKind
from domain.lead_time import LeadTime, lead_time_floor
from domain.limits import MAX_REASON
from domain.messages import Filed, Rescheduled
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, ChangeDraft, NewChange, StepSnapshot
from domain.policy import Policy
from domain.ports import ChangeQuery, ChangeUpdate
from domain.read_models import ActionOutcome
from domain.retry import until_stored
from domain.risk import assess_risk
from domain.usecases.base import CALENDAR_LIMIT, Deps, UseCase
from domain.usecases.chase import filing_chase, rechase, with_rule_steps

# Files an emergency from the form (usecases/emergency.py: declare_from_form).
Declare = Callable[..., Awaitable[Change]]


class Intake(UseCase):
    def __init__(self, deps: Deps, *, declare: Declare | None = None) -> None:
        super().__init__(deps)
        self._declare = declare

    async def submit_change(self, *, form: ChangeForm, requester: str, team_id: str | None = None) -> Change:
        """Validate, score, snapshot the approval steps and store the CR with its posts.
        An emergency goes the one emergency way (on-call, incidents channel, post-approval)."""
        if self._declare is not None and (form.category or "").strip() == Category.EMERGENCY.value:
            return await self._declare(form=form, requester=requester, team_id=team_id)
        now = self._clock.now()
        draft = validate_form(form, policy=self.policy, now=now)
        freezes, others = await self._repo.schedule_context(
            start=draft.starts_at, end=draft.ends_at, others=_overlapping(draft.starts_at, draft.ends_at)
        )
        lead = lead_time_floor(self.policy.lead_time, category=draft.category, now=now)
        exception_reason = await self._check_schedule(
            category=draft.category,
            start=draft.starts_at,
            end=draft.ends_at,
            requested=form.exception_requested,
            reason=form.exception_reason,
            freezes=freezes,
            lead=lead,
        )
        conflicts = await self._conflicts(
            services=draft.services, start=draft.starts_at, end=draft.ends_at, others=others
        )
        unseen = [c for c in conflicts if c.change_id not in form.acknowledged_conflicts]
        if unseen:
            raise ConflictsFound(conflicts)
        risk = assess_risk(self.policy.risk_matrix, impact=draft.impact, likelihood=draft.likelihood)
        steps = route_steps(self.policy, draft, risk, exception=exception_reason is not None)
        status = Status.PENDING_APPROVAL if steps else Status.APPROVED
        audit: list[AuditEntry] = []
        # Waiting for approval: chased until approved (policy approvals.deadline).
        approval_due_at, notices = filing_chase(self.policy, draft, risk, now) if steps else (None, [])
        if not steps:
            why = (
                f"pre-approved standard change '{draft.catalog_id}'"
                if draft.catalog_id
                else f"no approval needed for a {draft.category.value} change of {risk.value} risk"
            )
            audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.AUTO_APPROVED, now, {"reason": why}))
            standard = draft.category is Category.STANDARD
            notices = self._plan(draft.starts_at, draft.ends_at, approved_at=now, pre_approved=standard)
        if exception_reason is not None:
            details = {"reason": exception_reason}
            if lead is not None and draft.starts_at < lead.earliest:
                details["short_notice"] = lead.problem  # under the category's lead time
            audit.append(AuditEntry(requester, AuditAction.EXCEPTION_REQUESTED, now, details))
        return await self._file(
            NewChange(
                draft=draft,
                risk=risk,
                status=status,
                requester=requester,
                created_at=now,
                steps=steps,
                conflicts=tuple(c.change_id for c in conflicts),
                approval_due_at=approval_due_at,
            ),
            team_id=team_id,
            audit=audit,
            intents=lambda change_id: intake_intents(self.policy, change_id, requester, status),
            notices=notices,
        )

    async def _check_schedule(
        self,
        *,
        category: Category,
        start: datetime,
        end: datetime,
        requested: bool,
        reason: str | None,
        freezes: Sequence[Freeze] | None = None,
        lead: LeadTime | None = None,
    ) -> str | None:
        """Refuse a window outside the category's windows, touching a blackout or sooner
        than the `lead` time allows, unless an exception is requested with a reason
        (returned: the CR then needs one more step)."""
        if freezes is None:
            freezes = await self._repo.freezes(start=start, end=end)
        problems = schedule_problems(
            windows=self.policy.windows,
            blackouts=self.policy.blackouts,
            freezes=freezes,
            category=category,
            start=start,
            end=end,
            zone=self.policy.zone,
            lead=lead,
        )
        if not problems:
            return None
        if not requested:
            raise IntakeRejected(problems)
        why = (reason or "").strip()
        if not why:
            raise IntakeRejected({"exception_reason": "Say why this change cannot wait for an allowed slot."})
        if len(why) > MAX_REASON:
            raise IntakeRejected({"exception_reason": f"Keep the reason to {MAX_REASON} characters."})
        return why

    async def _conflicts(
        self,
        *,
        services: Sequence[str],
        start: datetime,
        end: datetime,
        exclude_id: str | None = None,
        others: Sequence[Change] | None = None,
    ) -> list[Conflict]:
        if others is None:
            others = await self._repo.list_changes(_overlapping(start, end))
        return find_conflicts(
            services=services,
            start=start,
            end=end,
            others=others,
            dependencies=self.policy.dependencies,
            exclude_id=exclude_id,
        )

    # Editing a filed CR (usecases/editing.py) checks its schedule and overlaps the same way.
    check_schedule = _check_schedule
    find_conflicts = _conflicts

    async def reschedule(
        self, *, change_id: str, user: str, starts_at: int | None, ends_at: int | None
    ) -> ActionOutcome:
        """Move the window; pending notices are planned again for the new times."""
        window = validate_window(starts_at, ends_at, now=self._clock.now(), limits=self.policy.limits)

        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            now = self._clock.now()
            refusal = before_start_refusal(change, user, verb="reschedule")
            if refusal:
                return ActionOutcome(change, refusal)
            new_start, new_end = window
            if change.draft.category is not Category.EMERGENCY:  # an exception covered the old window only
                await self._check_schedule(
                    category=change.draft.category, start=new_start, end=new_end, requested=False, reason=None
                )
            conflicts = await self._conflicts(
                services=change.draft.services, start=new_start, end=new_end, exclude_id=change.id
            )
            audit = [
                AuditEntry(
                    user,
                    AuditAction.RESCHEDULED,
                    now,
                    {
                        "from": [change.draft.starts_at.isoformat(), change.draft.ends_at.isoformat()],
                        "to": [new_start.isoformat(), new_end.isoformat()],
                    },
                )
            ]
            void = voids_approval(change, new_start, new_end, self.policy.reschedule.keep_approval_within)
            replan = (
                self._plan(new_start, new_end, approved_at=now, pre_approved=pre_approved(change))
                if change.status is Status.APPROVED and not void
                else None
            )
            approval_due_at = None
            if change.status is Status.PENDING_APPROVAL or void:  # chased again for the new window
                approval_due_at, replan = rechase(
                    self.policy, change, starts_at=new_start, ends_at=new_end, now=now, voided=void
                )
            update = ChangeUpdate(
                at=now,
                status=Status.PENDING_APPROVAL if void else None,
                starts_at=new_start,
                ends_at=new_end,
                replace_notices=replan,
                drop_notices=void,
                void_approvals=void,
                conflicts=tuple(c.change_id for c in conflicts),
                approval_due_at=approval_due_at,
            )
            moved_from = (change.draft.starts_at, change.draft.ends_at)
            payload = Rescheduled(
                by=user,
                thread=True,
                reapproval=void,
                moved_from=moved_from,
            )
            intents = [
                Intent(IntentKind.REFRESH_CARDS, change_id),
                Intent(IntentKind.MESSAGE, change_id, self.policy.channels.changes, payload),
            ]
            if void:
                audit.append(voided_entry(change, now))
                intents.append(  # the approvers get the decision again, told what moved
                    Intent(
                        IntentKind.DM_APPROVERS,
                        change_id,
                        None,
                        replace(payload, thread=False),
                        dedupe_key=f"{change_id}:dm-approvers:{change.version}",
                    )
                )
            if await self._commit(change, update, audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)


def route_steps(
    policy: Policy, draft: ChangeDraft, risk: Risk, *, exception: bool
) -> tuple[StepSnapshot, ...]:
    """The approval steps a CR like `draft` of `risk` needs, snapshotted from the policy: its
    category's, the review steps its rules add, and one more for an exception to the windows
    or lead time; filing and editing route alike."""
    steps = tuple(
        StepSnapshot(role=spec.role, count=spec.count, members=tuple(policy.roles[spec.role]))
        for spec in policy.steps_for(category=draft.category, risk=risk)
    )
    steps = with_rule_steps(policy, steps, draft=draft, risk=risk)
    if exception:
        spec = policy.exceptions
        steps += (StepSnapshot(spec.role, spec.count, tuple(policy.roles[spec.role]), purpose="exception"),)
    return steps


def pre_approved(change: Change) -> bool:
    """A standard change that needed no sign-off."""
    return change.draft.category is Category.STANDARD and not change.steps


def _overlapping(start: datetime, end: datetime) -> ChangeQuery:
    """The open CRs whose windows overlap [start, end): the candidates for a conflict."""
    return ChangeQuery(
        statuses=OPEN_FOR_CONFLICTS,
        starts_before=end,
        ends_after=start,
        limit=CALENDAR_LIMIT,
        with_approvals=False,
    )


def intake_intents(policy: Policy, change_id: str, requester: str, status: Status) -> list[Intent]:
    """A filed CR's posts: its card in #changes, the requester told, the approvers asked."""
    channel = policy.channels.changes
    intents = [
        Intent(IntentKind.POST_CARD, change_id, channel, dedupe_key=f"{change_id}:card:{channel}"),
        Intent(
            IntentKind.MESSAGE,
            change_id,
            requester,
            Filed(status=status),
            dedupe_key=f"{change_id}:filed",
        ),
    ]
    if status is Status.PENDING_APPROVAL:
        intents.append(Intent(IntentKind.DM_APPROVERS, change_id, dedupe_key=f"{change_id}:dm-approvers"))
    return intents
