"""Correcting a filed change instead of replacing it: the requester edits it (the same
form, the same validation), an approver asks for changes before deciding, and a rejected
or sent-back change is resubmitted. The CR keeps its id and its whole trail."""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain import quorum
from domain.authz import barred_implementer, voided_entry
from domain.editing import CHANGE_MANAGER_ROLE, RESUBMITTED, FieldChange, draft_changes, edit_refusal
from domain.enums import Category, Decision, Risk, Status
from domain.errors import ConflictsFound
from domain.intake import ChangeForm, IntakeRejected, validate_form
from domain.intents import Intent, IntentKind
from domain.limits import MAX_REASON
from domain.messages import ChangesRequested, Edited
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, ChangeDraft, Phase
from domain.ports import ChangeUpdate
from domain.read_models import ActionOutcome, DecisionOutcome
from domain.retry import until_stored
from domain.risk import assess_risk
from domain.usecases.approvals import AUDITED_REFUSALS
from domain.usecases.base import Deps, UseCase
from domain.usecases.chase import rechase
from domain.usecases.intake import Intake, route_steps


@dataclass(frozen=True)
class _Edit:
    """A validated edit of `change`: the new draft and risk, what changed, the exception."""

    change: Change
    draft: ChangeDraft
    risk: Risk
    diff: list[FieldChange]
    exception: str | None
    conflicts: tuple[str, ...]

    @property
    def reapproval(self) -> bool:
        """Sent (back) to the approvers: resubmitted, or what they judge changed."""
        return self.change.status in RESUBMITTED or any(c.judged for c in self.diff)


class Editing(UseCase):
    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self._intake = Intake(deps)  # an edit's schedule and overlaps are checked as filing checks them

    async def check_edit(self, *, change_id: str, user: str) -> ActionOutcome:
        """May `user` edit the CR now? Asked before the form opens; a refusal is audited."""
        change = await self._require(change_id)
        return ActionOutcome(change, await self._edit_refusal(change, user))

    async def edit_change(self, *, change_id: str, user: str, form: ChangeForm) -> ActionOutcome:
        """Store the edited CR in one conditional write. What the approvers judged changing
        (or a rejected or sent-back CR resubmitted) voids its approvals, routes its steps
        again and asks the approvers, told what changed; a title or description fix only
        refreshes the card. Raises IntakeRejected and ConflictsFound as filing does."""

        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            refusal = await self._edit_refusal(change, user)
            if refusal:
                return ActionOutcome(change, refusal)
            edit = await self._validated(change, form)
            if not edit.diff:  # a rejected or sent-back change too: resubmitted with what changed
                return ActionOutcome(change, "nothing was changed")
            update, audit, intents = self._edit_write(edit, user)
            if await self._commit(change, update, audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: judge the edit again on its fresh state

        return await until_stored(change_id, attempt)

    async def request_changes(
        self, *, change_id: str, user: str, comment: str, team_id: str | None = None
    ) -> DecisionOutcome:
        """An approver's third answer: not yet, change this first. Same authority as
        approving; the CR goes back to its requester with the comment until edited."""
        comment = comment.strip()
        if not comment:
            raise IntakeRejected({"reason": "Say what should change before you can approve it."})
        if len(comment) > MAX_REASON:
            raise IntakeRejected({"reason": f"Keep the comment to {MAX_REASON} characters."})

        async def attempt() -> DecisionOutcome | None:
            change = await self._require(change_id)
            now = self._clock.now()
            verdict = quorum.decide(
                status=change.status,
                requester=change.requester,
                steps=change.steps,
                approvals=change.approvals,
                user=user,
                eligible_steps=await self._eligible_steps(change, user),
                decision=Decision.REJECT,  # a vote that ends the round, like a rejection
                implementer=barred_implementer(change, self.policy),
            )
            if isinstance(verdict, quorum.Refusal):
                if verdict in AUDITED_REFUSALS:
                    details = {"decision": "request_changes", "refusal": verdict.value, "team_id": team_id}
                    await self._audit_refusal(
                        change_id, AuditEntry(user, AuditAction.DECISION_REFUSED, now, details)
                    )
                return DecisionOutcome(change, verdict)
            role = change.steps[verdict.step_index].role
            asked = {"step": verdict.step_index, "role": role, "comment": comment, "team_id": team_id}
            payload = ChangesRequested(by=user, role=role, comment=comment)
            intents = [
                Intent(IntentKind.REFRESH_CARDS, change_id),
                Intent(IntentKind.MESSAGE, change_id, change.requester, payload),
                Intent(
                    IntentKind.MESSAGE, change_id, self.policy.channels.changes, replace(payload, thread=True)
                ),
            ]
            if change.implementer != change.requester:  # who carries it out hears it too
                told = replace(payload, implementer=True)
                intents.append(Intent(IntentKind.MESSAGE, change_id, change.implementer, told))
            update = ChangeUpdate(at=now, status=Status.CHANGES_REQUESTED)
            audit = [AuditEntry(user, AuditAction.CHANGES_REQUESTED, now, asked)]
            if await self._commit(change, update, audit, intents):
                return DecisionOutcome(await self._require(change_id))
            return None

        return await until_stored(change_id, attempt)

    async def _edit_refusal(self, change: Change, user: str) -> str | None:
        has_role = CHANGE_MANAGER_ROLE in self.policy.roles
        manager = has_role and await self._in_roles(user, [CHANGE_MANAGER_ROLE])
        refusal = edit_refusal(change, user, manager=manager, has_manager_role=has_role)
        if refusal:
            details = {"action": "edit", "status": change.status.value, "refusal": refusal}
            await self._audit_refusal(
                change.id, AuditEntry(user, AuditAction.ACTION_REFUSED, self._clock.now(), details)
            )
        return refusal

    async def _validated(self, change: Change, form: ChangeForm) -> _Edit:
        """The form judged as filing judges it (fields, schedule, overlaps), on this CR."""
        if form.category == Category.EMERGENCY.value:
            raise IntakeRejected(
                {"category": "An emergency is declared with `/change emergency`, not by an edit."}
            )
        old = change.draft
        draft = validate_form(replace(form, source=None), policy=self.policy, now=self._clock.now())
        draft = replace(draft, source=old.source, severity=old.severity, incident_ref=old.incident_ref)
        exception = await self._intake.check_schedule(
            category=draft.category,
            start=draft.starts_at,
            end=draft.ends_at,
            requested=form.exception_requested,
            reason=form.exception_reason,
        )
        conflicts = await self._intake.find_conflicts(
            services=draft.services, start=draft.starts_at, end=draft.ends_at, exclude_id=change.id
        )
        if [c for c in conflicts if c.change_id not in form.acknowledged_conflicts]:
            raise ConflictsFound(conflicts)
        risk = assess_risk(self.policy.risk_matrix, impact=draft.impact, likelihood=draft.likelihood)
        diff = draft_changes(
            old, draft, old_risk=change.risk.value, new_risk=risk.value, zone=self.policy.zone
        )
        return _Edit(change, draft, risk, diff, exception, tuple(c.change_id for c in conflicts))

    def _edit_write(self, edit: _Edit, user: str) -> tuple[ChangeUpdate, list[AuditEntry], list[Intent]]:
        """What an edit stores: the draft, and when it goes back to the approvers, fresh
        steps with the old approvals voided (or approved at once if it needs none now)."""
        change, draft, now = edit.change, edit.draft, self._clock.now()
        lines = tuple(c.line() for c in edit.diff)
        resubmitted = change.status in RESUBMITTED
        details = {
            "changes": list(lines),
            "fields": {c.field: {"from": c.before, "to": c.after} for c in edit.diff},
            "reapproval": edit.reapproval,
            "was": change.status.value,
        }
        audit = [AuditEntry(user, AuditAction.EDITED, now, details)]
        intents = [Intent(IntentKind.REFRESH_CARDS, change.id)]
        update = ChangeUpdate(
            at=now, draft=draft, risk=edit.risk, starts_at=draft.starts_at, ends_at=draft.ends_at,
            conflicts=edit.conflicts,
        )  # fmt: skip
        if not edit.reapproval:
            return update, audit, intents
        steps = route_steps(self.policy, draft, edit.risk, exception=edit.exception is not None)
        status = Status.PENDING_APPROVAL if steps else Status.APPROVED
        if any(a.phase is Phase.PRE for a in change.approvals):
            audit.append(voided_entry(change, now))
        if edit.exception is not None:
            audit.append(AuditEntry(user, AuditAction.EXCEPTION_REQUESTED, now, {"reason": edit.exception}))
        if not steps:
            reason = {"reason": "no approval needed after the edit"}
            audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.AUTO_APPROVED, now, reason))
        update = replace(
            update,
            status=status,
            steps=steps,
            void_approvals=True,
            approved_at=now if not steps else None,
            drop_notices=bool(steps),
            replace_notices=self._plan(
                draft.starts_at,
                draft.ends_at,
                approved_at=now,
                pre_approved=draft.category is Category.STANDARD,  # no "short notice" for those
            ),
        )
        if steps:  # waiting again: chased from now, as a new filing is
            due, chase = rechase(
                self.policy,
                replace(change, draft=draft, risk=edit.risk),
                starts_at=draft.starts_at,
                ends_at=draft.ends_at,
                now=now,
                voided=True,
            )
            update = replace(update, replace_notices=chase, approval_due_at=due)
        payload = Edited(by=user, changes=lines, reapproval=bool(steps), resubmitted=resubmitted)
        intents.append(
            Intent(IntentKind.MESSAGE, change.id, self.policy.channels.changes, replace(payload, thread=True))
        )
        if steps:  # the approvers get the decision again, told what changed
            intents.append(
                Intent(
                    IntentKind.DM_APPROVERS,
                    change.id,
                    None,
                    payload,
                    dedupe_key=f"{change.id}:dm-approvers:{change.version}",
                )
            )
        return update, audit, intents
