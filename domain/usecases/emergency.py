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
    plan_post_approval,
    validate_emergency,
)
from domain.enums import Status
from domain.intents import Intent, IntentKind
from domain.messages import OnCallFound, PostChase
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, NewChange, PostState, StepSnapshot
from domain.policy import Policy
from domain.ports import ChangeUpdate, DueNotice, NoticeSettlement
from domain.retry import until_stored
from domain.risk import assess_risk
from domain.usecases.base import UseCase, escalation, is_late, late_audit, skipped
from domain.usecases.intake import intake_intents


class Emergency(UseCase):
    async def declare_emergency(
        self,
        *,
        form: EmergencyForm,
        requester: str,
        team_id: str | None = None,
        source_link: str | None = None,
    ) -> Change:
        """Fix first, document concurrently: store the emergency, announce it, find the
        on-call (after the ack: PagerDuty may be slow) and start the post-approval chase."""
        now = self._clock.now()
        if source_link and not (form.incident or "").strip():
            form.incident = source_link
        draft = validate_emergency(form, policy=self.policy, now=now, requester=requester)
        risk = assess_risk(self.policy.risk_matrix, impact=draft.impact, likelihood=draft.likelihood)
        emergency = self.policy.emergency
        post = emergency.post_approval
        go_ahead = emergency.go_ahead == "on_call"
        steps = (StepSnapshot(ON_CALL_ROLE, 1, ()),) if go_ahead else ()
        status = Status.PENDING_APPROVAL if go_ahead else Status.APPROVED
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
                },
            ),
        ]
        notices = plan_post_approval(emergency, declared_at=now)
        if not go_ahead:
            audit.append(
                AuditEntry(
                    SYSTEM_ACTOR,
                    AuditAction.AUTO_APPROVED,
                    now,
                    {"reason": f"emergency: fix first, post-approve within {format_offset(post.within)[2:]}"},
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
                post_state=PostState.PENDING,
                post_due_at=now + post.within,
                post_steps=(StepSnapshot(post.role, post.count, tuple(self.policy.roles[post.role])),),
            ),
            team_id=team_id,
            audit=audit,
            intents=lambda change_id: self._emergency_intents(change_id, requester, status),
            notices=notices,
        )

    def _emergency_intents(self, change_id: str, requester: str, status: Status) -> list[Intent]:
        intents = intake_intents(self.policy, change_id, requester, status)
        intents = [i for i in intents if i.kind is not IntentKind.DM_APPROVERS]
        incidents = self.policy.channels.incidents
        if incidents:
            intents.insert(
                1,
                Intent(
                    IntentKind.POST_CARD, change_id, incidents, dedupe_key=f"{change_id}:card:{incidents}"
                ),
            )
        intents.append(Intent(IntentKind.ON_CALL, change_id, dedupe_key=f"{change_id}:on-call"))
        return intents

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
