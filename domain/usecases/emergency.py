"""Emergencies: fix first, document concurrently. Declaring one, finding the on-call, and
chasing its post-approval (the post-approval vote itself is in approvals.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from domain import journal
from domain.durations import format_offset
from domain.emergency import (
    ON_CALL_ROLE,
    POST_DEADLINE,
    EmergencyForm,
    change_form_errors,
    from_change_form,
    on_call_users,
    plan_post_approval,
    post_approval_steps,
    pre_approval_steps,
    validate_emergency,
)
from domain.enums import Status
from domain.intake import ChangeForm, IntakeRejected
from domain.intents import Intent, IntentKind
from domain.messages import OnCallFound, PostChase
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, NewChange, PostState, StepSnapshot
from domain.policy import Policy
from domain.ports import ChangeUpdate, DueNotice, NoticeSettlement
from domain.read_models import ActionOutcome
from domain.retry import until_stored
from domain.risk import assess_risk
from domain.usecases.base import UseCase, escalation, is_late, late_audit, skipped
from domain.usecases.intake import intake_intents


class Emergency(UseCase):
    async def declare_from_form(
        self, *, form: ChangeForm, requester: str, team_id: str | None = None
    ) -> Change:
        """The full form (or a pipeline) filing an emergency: declared as `/change emergency`
        declares one, its errors keyed by the form's own fields."""
        try:
            return await self.declare_emergency(
                form=from_change_form(form, self.policy), requester=requester, team_id=team_id
            )
        except IntakeRejected as exc:
            raise IntakeRejected(change_form_errors(exc.errors)) from None

    async def declare_emergency(
        self,
        *,
        form: EmergencyForm,
        requester: str,
        team_id: str | None = None,
        source_link: str | None = None,
    ) -> Change:
        """Fix first, document concurrently: store the emergency, announce it, find the
        on-call (after the ack: PagerDuty may be slow), hand the post-approvers their card
        and start their chase. With pre-approval steps it waits for them first."""
        now = self._clock.now()
        if source_link and not (form.incident or "").strip():
            form.incident = source_link
        draft = validate_emergency(form, policy=self.policy, now=now, requester=requester)
        risk = assess_risk(self.policy.risk_matrix, impact=draft.impact, likelihood=draft.likelihood)
        emergency = self.policy.emergency
        steps, post_steps = pre_approval_steps(self.policy), post_approval_steps(self.policy)
        status = Status.PENDING_APPROVAL if steps else Status.APPROVED
        within = emergency.post_approval.within
        audit = [
            AuditEntry(
                requester,
                AuditAction.EMERGENCY_DECLARED,
                now,
                {
                    "severity": draft.severity,
                    "incident": draft.incident_ref,
                    "source": source_link,
                    "go_ahead": emergency.go_ahead,
                    "pre_approval": [s.role for s in steps],
                },
            ),
        ]
        notices = plan_post_approval(emergency, declared_at=now) if post_steps else []
        if not steps:
            after = f"post-approve within {format_offset(within)[2:]}" if post_steps else "no post-approval"
            audit.append(
                AuditEntry(
                    SYSTEM_ACTOR, AuditAction.AUTO_APPROVED, now, {"reason": f"emergency: fix first, {after}"}
                )
            )
            notices += self._plan(draft.starts_at, draft.ends_at, approved_at=now)
        return await self._file(
            NewChange(
                draft=draft,
                risk=risk,
                status=status,
                requester=requester,
                created_at=now,
                steps=steps,
                post_state=PostState.PENDING if post_steps else PostState.NOT_NEEDED,
                post_due_at=now + within if post_steps else None,
                post_steps=post_steps,
            ),
            team_id=team_id,
            audit=audit,
            intents=lambda change_id: self._emergency_intents(
                change_id, requester, status, steps, post_steps
            ),
            notices=notices,
        )

    def _emergency_intents(
        self,
        change_id: str,
        requester: str,
        status: Status,
        steps: Sequence[StepSnapshot],
        post_steps: Sequence[StepSnapshot],
    ) -> list[Intent]:
        """The intake posts, also in the incidents channel; the pre-approvers other than the
        on-call (asked once PagerDuty answers) and the post-approvers get their card now."""
        intents = intake_intents(self.policy, change_id, requester, status)
        if all(step.role == ON_CALL_ROLE for step in steps):
            intents = [i for i in intents if i.kind is not IntentKind.DM_APPROVERS]
        incidents = self.policy.channels.incidents
        if incidents:
            intents.insert(
                1,
                Intent(
                    IntentKind.POST_CARD, change_id, incidents, dedupe_key=f"{change_id}:card:{incidents}"
                ),
            )
        if post_steps:
            intents.append(
                Intent(IntentKind.DM_POST_APPROVERS, change_id, dedupe_key=f"{change_id}:dm-post-approvers")
            )
        intents.append(Intent(IntentKind.ON_CALL, change_id, dedupe_key=f"{change_id}:on-call"))
        return intents

    async def acknowledge(self, *, change_id: str, user: str, team_id: str | None = None) -> ActionOutcome:
        """The on-call says they have seen an emergency that needs no go-ahead from them:
        audited once each, shown on the cards."""

        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            refusal = acknowledge_refusal(change, user)
            now = self._clock.now()
            if refusal is not None:
                if user not in on_call_users(change):  # without authority: audited
                    details = {"action": "acknowledge", "refusal": refusal, "team_id": team_id}
                    entry = AuditEntry(user, AuditAction.ACTION_REFUSED, now, details)
                    await self._audit_refusal(change_id, entry)
                return ActionOutcome(change, refusal)
            audit = [AuditEntry(user, AuditAction.ON_CALL_ACKNOWLEDGED, now, {"team_id": team_id})]
            intents = [Intent(IntentKind.REFRESH_CARDS, change_id)]
            if await self._commit(change, ChangeUpdate(at=now), audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)

    async def assign_on_call(
        self, *, change_id: str, users: Sequence[str], source: str, reason: str | None
    ) -> Change:
        """Record who is on call; with `go_ahead: on_call` they become the approvers."""

        async def attempt() -> Change | None:
            change = await self._require(change_id)
            now = self._clock.now()
            on_call = tuple(u for u in users if u != change.requester) or tuple(users)
            steps = None
            if (
                change.status is Status.PENDING_APPROVAL
                and change.steps
                and change.steps[0].role == ON_CALL_ROLE
            ):
                steps = (StepSnapshot(ON_CALL_ROLE, 1, on_call), *change.steps[1:])
            audit = [
                AuditEntry(
                    SYSTEM_ACTOR,
                    AuditAction.ON_CALL_RESOLVED,
                    now,
                    {"users": list(on_call), "source": source, "reason": reason},
                )
            ]
            intents = [
                Intent(
                    IntentKind.DM_CARD,
                    change_id,
                    user,
                    None,
                    dedupe_key=f"{change_id}:dm:{user}",
                )
                for user in on_call
            ]
            if self.policy.channels.incidents:
                intents.append(
                    Intent(
                        IntentKind.MESSAGE,
                        change_id,
                        self.policy.channels.incidents,
                        OnCallFound(
                            users=on_call,
                            source=source,
                            reason=reason,
                            thread=True,
                        ),
                        dedupe_key=f"{change_id}:on-call-mention",
                    )
                )
            intents.append(Intent(IntentKind.REFRESH_CARDS, change_id))
            if await self._repo.update_change(
                change_id=change_id,
                expected_version=change.version,
                update=ChangeUpdate(at=now, steps=steps),
                audit=audit,
                intents=intents,
            ):
                journal.on_call(change_id, on_call, source=source)
                self._notifier.wake()
                return await self._require(change_id)
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)


def acknowledge_refusal(change: Change, user: str) -> str | None:
    """Why `user` may not acknowledge the emergency now, or None."""
    if user not in on_call_users(change):
        return "only the on-call engineer acknowledges an emergency"
    if any(step.role == ON_CALL_ROLE for step in change.steps):
        return "your go-ahead is asked instead: use Go ahead or Reject"
    if change.status not in (Status.APPROVED, Status.IN_PROGRESS):
        return "the emergency is over"
    if any(e.action is AuditAction.ON_CALL_ACKNOWLEDGED and e.actor == user for e in change.audit):
        return "you acknowledged it already"
    return None


def post_chase_intents(policy: Policy, change: Change, notice: DueNotice, *, late: bool) -> list[Intent]:
    """The post-approval chase: the thread and the approvers; at the deadline also the
    channel and the escalation role."""
    deadline = notice.key == POST_DEADLINE
    payload = PostChase(
        key=notice.key,
        late=late,
        due_at=notice.due_at,
    )
    changes = policy.channels.changes
    intents = [
        Intent(
            IntentKind.MESSAGE,
            change.id,
            changes,
            replace(payload, thread=True),
            dedupe_key=f"notice:{notice.id}:thread",
        ),
        Intent(IntentKind.DM_POST_APPROVERS, change.id, None, payload, dedupe_key=f"notice:{notice.id}:dm"),
    ]
    if deadline:
        intents += [
            Intent(IntentKind.MESSAGE, change.id, changes, payload, dedupe_key=f"notice:{notice.id}:channel"),
            escalation(change, notice, payload, role=policy.emergency.escalate_to),
        ]
    return intents


def settle_post_chase(
    change: Change, notice: DueNotice, *, now: datetime, policy: Policy
) -> NoticeSettlement:
    """An emergency's post-approval reminder or deadline: its approvers chased while it is
    pending; at the deadline it turns overdue and is escalated."""
    if change.post_state is not PostState.PENDING:
        return skipped(
            change, notice, now=now, reason=f"post-approval is {(change.post_state or 'not needed')}"
        )
    late = is_late(notice, now=now, policy=policy)
    audit = late_audit(notice, now=now, late=late)
    overdue = notice.key == POST_DEADLINE
    if overdue:
        audit.append(
            AuditEntry(
                SYSTEM_ACTOR,
                AuditAction.POST_APPROVAL_OVERDUE,
                now,
                {"escalated_to": policy.emergency.escalate_to},
            )
        )
    intents = post_chase_intents(policy, change, notice, late=late)
    if overdue:
        intents.append(Intent(IntentKind.REFRESH_CARDS, change.id))
    return NoticeSettlement(
        notice.id,
        change.id,
        sent=True,
        late=late,
        note=None,
        audit=audit,
        intents=intents,
        post_state=PostState.OVERDUE if overdue else None,
    )
