"""Reviews after a change: asking for one (failed, rolled back, major or emergency changes,
a refused post-approval, a linked incident), writing it, chasing it, and linking incidents."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain import journal
from domain.authz import incident_refusal
from domain.enums import Category, Status
from domain.intake import IntakeRejected
from domain.intents import Intent, IntentKind
from domain.limits import MAX_ANSWER
from domain.messages import IncidentLinked, ReviewChase, ReviewDone, ReviewRequest
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, Review
from domain.policy import Policy
from domain.ports import ChangeUpdate, DueNotice, NoticeSettlement
from domain.read_models import ActionOutcome
from domain.retry import until_stored
from domain.timeline import REVIEW_DEADLINE, REVIEW_REMINDER, PlannedNotice
from domain.usecases.base import UseCase, escalation, is_late, late_audit, skipped

REVIEW_NOTICES = (REVIEW_REMINDER, REVIEW_DEADLINE)


class Reviews(UseCase):
    async def submit_review(self, *, change_id: str, user: str, answers: dict[str, str]) -> ActionOutcome:
        """The implementer (or requester) writes the review; stored once, audited, linked from the CR."""
        change = await self._require(change_id)
        if user not in (change.implementer, change.requester):
            return ActionOutcome(change, "only the implementer or the requester writes the review")
        if change.review is None:
            return ActionOutcome(change, "no review was asked for this change")
        if change.review.done:
            return ActionOutcome(change, "its review is already written")
        errors = {
            k: f"Keep it to {MAX_ANSWER} characters." for k, v in answers.items() if len(v) > MAX_ANSWER
        }
        if not (answers.get("result") or "").strip():
            errors["result"] = "Say how the change went."
        if errors:
            raise IntakeRejected(errors)
        now = self._clock.now()
        audit = [
            AuditEntry(
                user,
                AuditAction.REVIEW_SUBMITTED,
                now,
                {"on_time": now <= change.review.due_at, "result": answers.get("result")},
            )
        ]
        payload = ReviewDone(by=user, thread=True)
        intents = [
            Intent(IntentKind.REFRESH_CARDS, change_id),
            Intent(IntentKind.MESSAGE, change_id, self.policy.channels.changes, payload),
        ]
        if not await self._repo.submit_review(
            change_id=change_id, user=user, answers=answers, now=now, audit=audit, intents=intents
        ):
            return ActionOutcome(await self._require(change_id), "its review is already written")
        journal.review_written(change_id, by=user, on_time=now <= change.review.due_at)
        self._notifier.wake()
        return ActionOutcome(await self._require(change_id))

    async def link_incident(self, *, change_id: str, user: str, incident: str) -> ActionOutcome:
        """Record that this change caused an incident: it then counts as a change failure."""
        incident = incident.strip()
        if not incident or len(incident) > 300:
            raise IntakeRejected({"incident": "Give the incident id or link (up to 300 characters)."})

        async def attempt() -> ActionOutcome | None:
            change = await self._require(change_id)
            now = self._clock.now()
            refusal = incident_refusal(
                change=change,
                user=user,
                in_incident_role=await self._in_roles(user, self.policy.incident_roles),
                policy=self.policy,
            )
            if refusal:
                details = {"action": "link_incident", "refusal": refusal, "incident": incident}
                await self._audit_refusal(
                    change.id, AuditEntry(user, AuditAction.ACTION_REFUSED, now, details)
                )
                return ActionOutcome(change, refusal)
            audit = [AuditEntry(user, AuditAction.INCIDENT_LINKED, now, {"incident": incident})]
            payload = IncidentLinked(by=user, incident=incident, thread=True)
            intents = [
                Intent(IntentKind.REFRESH_CARDS, change_id),
                Intent(IntentKind.MESSAGE, change_id, self.policy.channels.changes, payload),
            ]
            update = ChangeUpdate(at=now, caused_incident=incident)
            if change.review is None and change.status in (Status.COMPLETED, Status.CLOSED):
                review = Review(now, now + self.policy.review.due_within, "it caused an incident")
                update = with_review(self.policy, update, review, change, audit, intents)
            if await self._commit(change, update, audit, intents):
                return ActionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)


def with_review(
    policy: Policy,
    update: ChangeUpdate,
    review: Review,
    change: Change,
    audit: list[AuditEntry],
    intents: list[Intent],
) -> ChangeUpdate:
    """Ask for a review as part of this write: stored, chased, audited, the implementer told."""
    audit.append(
        AuditEntry(
            SYSTEM_ACTOR,
            AuditAction.REVIEW_REQUESTED,
            update.at,
            {"reason": review.reason, "due_at": review.due_at.isoformat()},
        )
    )
    intents.append(review_request_intent(change))
    return replace(update, request_review=review, add_notices=plan_review(policy, review, update.at))


def review_needed(policy: Policy, change: Change, target: Status, now: datetime) -> Review | None:
    """Failed or rolled back changes, and major or emergency ones when done, get a review."""
    if change.review is not None:
        return None
    rules = policy.review
    if target.value in rules.also_when:
        reason = f"the change {target.value.replace('_', ' ')}"
    elif target is Status.COMPLETED and change.draft.category in rules.required_for:
        reason = f"every {change.draft.category.value} change is reviewed"
    else:
        return None
    within = rules.due_within_emergency if change.draft.category is Category.EMERGENCY else rules.due_within
    return Review(requested_at=now, due_at=now + within, reason=reason)


def plan_review(policy: Policy, review: Review, now: datetime) -> list[PlannedNotice]:
    """The review's chase: a reminder (if still ahead) and the deadline."""
    reminder = review.due_at - policy.review.remind_before
    notices = [PlannedNotice(REVIEW_REMINDER, reminder, None)] if reminder > now else []
    return [*notices, PlannedNotice(REVIEW_DEADLINE, review.due_at, None)]


def review_chase_intents(policy: Policy, change: Change, notice: DueNotice) -> list[Intent]:
    """The implementer chased; at the deadline the escalation role too."""
    payload = ReviewChase(key=notice.key)
    intents = [
        Intent(
            IntentKind.MESSAGE,
            change.id,
            change.implementer,
            payload,
            dedupe_key=f"notice:{notice.id}:implementer",
        )
    ]
    if notice.key == REVIEW_DEADLINE:
        intents.append(escalation(change, notice, payload, role=policy.review.escalate_to))
    return intents


def review_request_intent(change: Change) -> Intent:
    """The implementer asked to write the review (once per CR)."""
    return Intent(
        IntentKind.MESSAGE,
        change.id,
        change.implementer,
        ReviewRequest(),
        dedupe_key=f"{change.id}:review-request",
    )


def settle_review_chase(
    change: Change, notice: DueNotice, *, now: datetime, policy: Policy
) -> NoticeSettlement:
    """A review reminder or deadline: the implementer chased (past the deadline, escalated),
    until the review is written."""
    if change.review is None or change.review.done:
        return skipped(change, notice, now=now, reason="the review is written")
    late = is_late(notice, now=now, policy=policy)
    audit = late_audit(notice, now=now, late=late)
    intents = review_chase_intents(policy, change, notice)
    if notice.key == REVIEW_DEADLINE:
        audit.append(
            AuditEntry(
                SYSTEM_ACTOR,
                AuditAction.REVIEW_OVERDUE,
                now,
                {"escalated_to": policy.review.escalate_to},
            )
        )
    return NoticeSettlement(
        notice.id, change.id, sent=True, late=late, note=None, audit=audit, intents=intents
    )
