"""Carrying a change out: start (held to its window and freezes), complete, fail, roll
back, close, cancel; the channel, the requester, stakeholders and PagerDuty told."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from domain.authz import before_start_refusal
from domain.emergency import implicit_start
from domain.enums import Category, Status
from domain.intake import IntakeRejected
from domain.intents import Intent, IntentKind
from domain.limits import MAX_NOTES, MAX_REASON
from domain.messages import ChangeEvent, ProgressUpdate
from domain.model import AuditAction, AuditEntry, Change
from domain.ports import ChangeUpdate
from domain.read_models import ActionOutcome, ProgressAction
from domain.retry import until_stored
from domain.start_rules import gate_start
from domain.template_fields import stakeholders_of
from domain.timeline import MONITORING_END, PlannedNotice
from domain.usecases.base import UseCase
from domain.usecases.reviews import review_needed, with_review

PROGRESS: dict[ProgressAction, tuple[frozenset[Status], Status, AuditAction]] = {
    ProgressAction.START: (frozenset({Status.APPROVED}), Status.IN_PROGRESS, AuditAction.STARTED),
    ProgressAction.COMPLETE: (
        frozenset({Status.APPROVED, Status.IN_PROGRESS}),
        Status.COMPLETED,
        AuditAction.COMPLETED,
    ),
    ProgressAction.FAIL: (
        frozenset({Status.APPROVED, Status.IN_PROGRESS}),
        Status.FAILED,
        AuditAction.FAILED,
    ),
    ProgressAction.ROLLBACK: (
        frozenset({Status.APPROVED, Status.IN_PROGRESS, Status.FAILED}),
        Status.ROLLED_BACK,
        AuditAction.ROLLED_BACK,
    ),
    ProgressAction.CLOSE: (
        frozenset({Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK}),
        Status.CLOSED,
        AuditAction.CLOSED,
    ),
}
NOTES_REQUIRED = frozenset({ProgressAction.FAIL, ProgressAction.ROLLBACK})
START_GATED = frozenset({ProgressAction.START, ProgressAction.COMPLETE})  # both start an approved CR
CHANGE_EVENT_STATUSES = frozenset({Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK})


class Progress(UseCase):
    async def record_progress(
        self,
        *,
        change_id: str,
        user: str,
        action: ProgressAction,
        notes: str = "",
        team_id: str | None = None,
        override: str = "",
        pipeline: bool = False,
    ) -> ActionOutcome:
        """Start / complete / fail / roll back / close, by the implementer or requester.

        `override`: the reason an override role starts it outside its window or in a freeze.
        `pipeline`: `user` is a deploy pipeline (domain/gates.py), which may report progress
        the way the implementer may, its start held to the gate's early allowance; every
        refusal it gets is audited (nobody sees it otherwise)."""
        notes, override = notes.strip(), override.strip()
        if action in NOTES_REQUIRED and not notes:
            raise IntakeRejected({"notes": "Say what happened, for the record and the review."})
        if len(notes) > MAX_NOTES:
            raise IntakeRejected({"notes": f"Keep the notes to {MAX_NOTES} characters."})
        _, target, audit_action = PROGRESS[action]

        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            now = self._clock.now()
            refusal, overridden = await self._refusal(
                change,
                user=user,
                action=action,
                override=override,
                pipeline=pipeline,
                team_id=team_id,
                now=now,
            )
            if refusal:
                return ActionOutcome(change, refusal)
            audit = [overridden] if overridden else []
            started_at = None
            if change.status is Status.APPROVED and target is not Status.IN_PROGRESS:
                # An emergency began at its declaration (or go-ahead): its duration stays real.
                emergency = change.draft.category is Category.EMERGENCY
                started_at = implicit_start(change) if emergency else now
                details: dict[str, object] = {"implicit": True, "team_id": team_id}
                if emergency:
                    details["started_at"] = started_at.isoformat()
                audit.append(AuditEntry(user, AuditAction.STARTED, now, details))
            elif target is Status.IN_PROGRESS:
                started_at = now
            audit.append(AuditEntry(user, audit_action, now, {"notes": notes, "team_id": team_id}))
            finishing = target in (Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK)
            monitoring = self.policy.timeline.monitoring.get(change.draft.category)
            update = ChangeUpdate(
                at=now,
                status=target,
                started_at=started_at,
                finished_at=now if finishing else None,
                outcome_notes=notes or None,
                replace_notices=(
                    [PlannedNotice(MONITORING_END, now + monitoring, None)]
                    if target is Status.COMPLETED and monitoring
                    else None
                ),
                drop_notices=target is not Status.IN_PROGRESS,
            )
            review = review_needed(self.policy, change, target, now)
            intents = [
                Intent(IntentKind.REFRESH_CARDS, change_id),
                *self._progress_intents(change, target, user, notes),
            ]
            if review is not None:
                update = with_review(self.policy, update, review, change, audit, intents)
            if await self._commit(change, update, audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)

    async def _refusal(
        self,
        change: Change,
        *,
        user: str,
        action: ProgressAction,
        override: str,
        pipeline: bool,
        team_id: str | None,
        now: datetime,
    ) -> tuple[str | None, AuditEntry | None]:
        """(why `user` may not, None), or (None, the audit entry of the override that lets
        them, if one does). A held start's, a bystander's and a pipeline's refusals are audited."""
        allowed_from = PROGRESS[action][0]
        # An override role may start someone else's change; everyone else is checked first.
        refusal = None if override else self._progress_refusal(change, user, allowed_from, action, pipeline)
        gated, overridden = (
            (None, None)
            if refusal
            else await self._start_gate(change, user, action, override, now, pipeline=pipeline)
        )
        if not (refusal or gated or overridden):
            refusal = self._progress_refusal(change, user, allowed_from, action, pipeline)
        refusal = refusal or gated
        if refusal and (gated or pipeline or user not in (change.implementer, change.requester)):
            details = {"action": action.value, "refusal": refusal, "team_id": team_id}
            await self._audit_refusal(change.id, AuditEntry(user, AuditAction.ACTION_REFUSED, now, details))
        return refusal, overridden

    async def _start_gate(
        self,
        change: Change,
        user: str,
        action: ProgressAction,
        override: str,
        now: datetime,
        *,
        pipeline: bool = False,
    ) -> tuple[str | None, AuditEntry | None]:
        """Starting (or completing unstarted) an approved change is held to its window and
        freezes; a pipeline's start to the gate's allowance, so what its gate let go starts."""
        if change.status is not Status.APPROVED or action not in START_GATED:
            return None, None
        freezes = await self._repo.freezes(start=now, end=now + timedelta(seconds=1))
        allowed = bool(override) and await self._in_roles(user, self.policy.start_override_roles)
        return gate_start(
            change=change,
            user=user,
            now=now,
            policy=self.policy,
            freezes=freezes,
            tolerance=self.policy.gates.early if pipeline else self.policy.start_tolerance,
            override=override,
            allowed=allowed,
        )

    def _progress_refusal(
        self,
        change: Change,
        user: str,
        allowed_from: frozenset[Status],
        action: ProgressAction,
        pipeline: bool = False,
    ) -> str | None:
        if not pipeline and user not in (change.implementer, change.requester):
            return f"only the implementer <@{change.implementer}> or the requester can do that"
        if change.status not in allowed_from:
            return f"the change is {change.status.value.replace('_', ' ')}, so it cannot {action.value}"
        return None

    def _progress_intents(self, change: Change, target: Status, user: str, notes: str) -> list[Intent]:
        payload = ProgressUpdate(status=target, by=user, notes=notes, thread=True)
        channel = self.policy.channels.changes
        intents = [Intent(IntentKind.MESSAGE, change.id, channel, payload)]
        if self._change_events and target in CHANGE_EVENT_STATUSES:
            at = self._clock.now()
            intents.append(
                Intent(
                    IntentKind.PD_CHANGE_EVENT,
                    change.id,
                    None,
                    ChangeEvent(status=target, at=at, by=user, notes=notes),
                    dedupe_key=f"{change.id}:pd:{target.value}:{at.isoformat()}",
                )
            )
        if target in (Status.FAILED, Status.ROLLED_BACK):
            intents.append(Intent(IntentKind.MESSAGE, change.id, channel, replace(payload, thread=False)))
        if target is Status.COMPLETED:
            for stakeholder in stakeholders_of(self.policy.timeline.stakeholders, change.draft):
                intents.append(
                    Intent(IntentKind.MESSAGE, change.id, stakeholder, replace(payload, thread=False))
                )
        if target is not Status.IN_PROGRESS and change.requester != user:
            intents.append(
                Intent(IntentKind.MESSAGE, change.id, change.requester, replace(payload, thread=False))
            )
        return intents

    async def cancel(self, *, change_id: str, user: str, reason: str = "") -> ActionOutcome:
        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            now = self._clock.now()
            refusal = before_start_refusal(change, user, verb="cancel")
            if refusal:
                return ActionOutcome(change, refusal)
            audit = [AuditEntry(user, AuditAction.CANCELLED, now, {"reason": reason.strip()[:MAX_REASON]})]
            payload = ProgressUpdate(
                status=Status.CANCELLED,
                by=user,
                notes=reason.strip()[:MAX_REASON],
                thread=True,
            )
            intents = [
                Intent(IntentKind.REFRESH_CARDS, change_id),
                Intent(IntentKind.MESSAGE, change_id, self.policy.channels.changes, payload),
            ]
            update = ChangeUpdate(at=now, status=Status.CANCELLED, drop_notices=True)
            if await self._commit(change, update, audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)
