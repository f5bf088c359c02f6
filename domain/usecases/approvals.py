"""Deciding on a change: its approval steps before it, and an emergency's post-approval
after it. Both run one decision flow (`_decide`); what differs between them is data, a
`DecisionPhase` (PRE, POST): the steps and approvals a vote counts against, the refusal's
audit tag, and what an accepted vote writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from domain import quorum
from domain.authz import barred_implementer, deciders_excluded
from domain.delegation import Approver, delegates_for
from domain.enums import Decision, Status
from domain.intake import IntakeRejected
from domain.intents import Intent, IntentKind
from domain.limits import MAX_REASON
from domain.messages import Decided, PostDecided, ReviewRequired
from domain.model import (
    SYSTEM_ACTOR,
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    Phase,
    PostState,
    Review,
    StepSnapshot,
)
from domain.policy import Policy
from domain.ports import ChangeUpdate
from domain.read_models import DecisionOutcome
from domain.retry import until_stored
from domain.usecases.base import UseCase, plan
from domain.usecases.reviews import with_review

# Refusals worth an audit line: someone tried to act without authority.
AUDITED_REFUSALS = frozenset(
    {quorum.Refusal.NOT_ELIGIBLE, quorum.Refusal.OWN_REQUEST, quorum.Refusal.OWN_IMPLEMENTATION}
)


@dataclass(frozen=True)
class Ballot:
    """An accepted vote: on which CR (its id as asked), who, what, why, when, the step it fills."""

    change_id: str
    user: str
    decision: Decision
    reason: str
    team_id: str | None
    at: datetime
    step_index: int

    def approval(self, phase: Phase = Phase.PRE) -> ApprovalEntry:
        """The vote as the CR stores it, in the phase it was cast."""
        return ApprovalEntry(self.user, self.decision, self.step_index, self.at, self.reason, phase)


@dataclass(frozen=True)
class Write:
    """What an accepted vote stores, in one conditional write."""

    update: ChangeUpdate
    audit: list[AuditEntry]
    intents: list[Intent]


@dataclass(frozen=True)
class DecisionPhase:
    """What differs between approving a change (PRE) and post-approving an emergency (POST)."""

    subject: str  # named when a rejection gives no reason
    tag: dict[str, str]  # put first in a refused vote's audit details
    status: Callable[[Change], Status]  # PENDING_APPROVAL while this phase takes votes
    steps: Callable[[Change], Sequence[StepSnapshot]]
    approvals: Callable[[Change], Sequence[ApprovalEntry]]
    write: Callable[[Policy, Change, quorum.Accepted, Ballot], Write]


class Approvals(UseCase):
    async def check_decision(self, *, change_id: str, user: str) -> quorum.Refusal | None:
        """Would a decision by `user` be accepted right now? (Asked before the reason modal.)"""
        return await self._check(PRE, change_id=change_id, user=user)

    async def check_post_decision(self, *, change_id: str, user: str) -> quorum.Refusal | None:
        return await self._check(POST, change_id=change_id, user=user)

    async def decide(
        self,
        *,
        change_id: str,
        user: str,
        decision: Decision,
        reason: str = "",
        team_id: str | None = None,
    ) -> DecisionOutcome:
        return await self._decide(
            PRE, change_id=change_id, user=user, decision=decision, reason=reason, team_id=team_id
        )

    async def post_decide(
        self, *, change_id: str, user: str, decision: Decision, reason: str = "", team_id: str | None = None
    ) -> DecisionOutcome:
        """An emergency's post-approval: same rules as every approval, recorded apart."""
        return await self._decide(
            POST, change_id=change_id, user=user, decision=decision, reason=reason, team_id=team_id
        )

    async def approvers_to_notify(self, *, change_id: str) -> list[str]:
        """Everyone who can still sign an open step, except the requester."""
        return await self._to_notify(PRE, change_id=change_id)

    async def post_approvers_to_notify(self, *, change_id: str) -> list[str]:
        return await self._to_notify(POST, change_id=change_id)

    async def role_members(self, *, role: str) -> list[str]:
        return sorted(await self._directory.expand(self.policy.roles.get(role, [])))

    async def _decide(
        self,
        phase: DecisionPhase,
        *,
        change_id: str,
        user: str,
        decision: Decision,
        reason: str,
        team_id: str | None,
    ) -> DecisionOutcome:
        """Read, judge the vote by quorum, audit a refusal without authority, or store the
        vote with what it causes in one conditional write (again on the fresh CR if it moved)."""
        reason = reason.strip()
        if decision is Decision.REJECT and not reason:
            raise IntakeRejected({"reason": f"Say why you reject {phase.subject}."})
        if len(reason) > MAX_REASON:
            raise IntakeRejected({"reason": f"Keep the reason to {MAX_REASON} characters."})

        async def attempt() -> DecisionOutcome | None:
            change = await self._require(change_id)
            verdict = await self._verdict(phase, change, user, decision)
            now = self._clock.now()
            if isinstance(verdict, quorum.Refusal):
                if verdict in AUDITED_REFUSALS:
                    details = {
                        **phase.tag,
                        "decision": decision.value,
                        "refusal": verdict.value,
                        "team_id": team_id,
                    }
                    await self._audit_refusal(
                        change_id, AuditEntry(user, AuditAction.DECISION_REFUSED, now, details)
                    )
                return DecisionOutcome(change, verdict)
            ballot = Ballot(change_id, user, decision, reason, team_id, now, verdict.step_index)
            write = phase.write(self.policy, change, verdict, ballot)
            if await self._commit(change, write.update, write.audit, write.intents):
                return DecisionOutcome(await self._require(change_id))
            return None  # the CR moved meanwhile: decide again on its fresh state

        return await until_stored(change_id, attempt)

    async def _check(self, phase: DecisionPhase, *, change_id: str, user: str) -> quorum.Refusal | None:
        change = await self._require(change_id)
        verdict = await self._verdict(phase, change, user, Decision.REJECT)
        return verdict if isinstance(verdict, quorum.Refusal) else None

    async def _verdict(
        self, phase: DecisionPhase, change: Change, user: str, decision: Decision
    ) -> quorum.Accepted | quorum.Refusal:
        steps = phase.steps(change)
        return quorum.decide(
            status=phase.status(change),
            requester=change.requester,
            steps=steps,
            approvals=phase.approvals(change),
            user=user,
            eligible_steps=await self._eligible_steps(change, user, steps),
            decision=decision,
            implementer=barred_implementer(change, self.policy),
        )

    async def who_can_approve(self, *, change: Change) -> dict[int, tuple[Approver, ...]]:
        """Who can still sign each open approval step of `change`, for its card: the
        members who have not decided (an away member through their delegate)."""
        if change.status is not Status.PENDING_APPROVAL:
            return {}
        return {
            index: tuple(sorted(people, key=lambda a: (a.user, a.for_user or "")))
            for index, people in (await self._open_people(PRE, change)).items()
        }

    async def _to_notify(self, phase: DecisionPhase, *, change_id: str) -> list[str]:
        """Who is asked (and chased): everyone who can still sign an open step, a member
        away through their delegate instead."""
        change = await self._require(change_id)
        if phase.status(change) is not Status.PENDING_APPROVAL:
            return []
        people = await self._open_people(phase, change)
        return sorted({approver.user for step in people.values() for approver in step})

    async def _open_people(self, phase: DecisionPhase, change: Change) -> dict[int, set[Approver]]:
        steps, approvals = phase.steps(change), phase.approvals(change)
        decided = {entry.user for entry in approvals}
        excluded = deciders_excluded(change, self.policy)
        now = self._clock.now()
        delegations = await self._repo.delegations(now=now)
        people: dict[int, set[Approver]] = {}
        for index in quorum.open_steps(steps, approvals):
            members = await self._directory.expand(steps[index].members) - decided - excluded
            away = delegates_for(members, delegations, now=now)
            people[index] = {
                Approver(away[user], user) if user in away else Approver(user) for user in members
            }
            direct = {a.user for a in people[index] if a.for_user is None}
            people[index] = {
                a
                for a in people[index]
                if a.user not in decided | excluded and (a.for_user is None or a.user not in direct)
            }
        return people


def _approval_write(policy: Policy, change: Change, verdict: quorum.Accepted, ballot: Ballot) -> Write:
    """A vote on the approval steps: recorded; the CR approved (its timeline planned) when
    the quorum is complete, or rejected; the requester told."""
    user, decision, reason, now = ballot.user, ballot.decision, ballot.reason, ballot.at
    step = change.steps[verdict.step_index]
    audit = [
        AuditEntry(
            user,
            AuditAction.APPROVAL_RECORDED if decision is Decision.APPROVE else AuditAction.REJECTED,
            now,
            {"step": verdict.step_index, "role": step.role, "reason": reason, "team_id": ballot.team_id},
        )
    ]
    approved = verdict.new_status is Status.APPROVED
    if approved:
        audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.APPROVED, now, {"quorum": "complete"}))
    update = ChangeUpdate(
        at=now,
        status=verdict.new_status,
        post_state=PostState.NOT_NEEDED
        if verdict.new_status is Status.REJECTED and change.post_state
        else None,
        drop_notices=verdict.new_status is Status.REJECTED,
        approval=ballot.approval(),
        approved_at=now if approved else None,
        # Approved: the window's notices replace the approval chase.
        replace_notices=plan(policy, change.draft.starts_at, change.draft.ends_at, approved_at=now)
        if approved
        else None,
    )
    intents = [
        Intent(IntentKind.REFRESH_CARDS, ballot.change_id),
        Intent(
            IntentKind.MESSAGE,
            ballot.change_id,
            change.requester,
            Decided(
                by=user,
                decision=decision,
                status=verdict.new_status,
                role=step.role,
                reason=reason,
            ),
        ),
    ]
    return Write(update, audit, intents)


def _post_approval_write(policy: Policy, change: Change, verdict: quorum.Accepted, ballot: Ballot) -> Write:
    """A vote on an emergency's post-approval: recorded apart, late if overdue; a
    rejection asks for a review; the channel and the requester told."""
    user, decision, reason, now = ballot.user, ballot.decision, ballot.reason, ballot.at
    step = change.post_steps[verdict.step_index]
    if decision is Decision.REJECT:
        new_state: PostState = PostState.REJECTED
    elif verdict.new_status is Status.APPROVED:
        new_state = PostState.APPROVED
    else:
        new_state = change.post_state or PostState.PENDING
    audit = [
        AuditEntry(
            user,
            AuditAction.POST_APPROVAL_RECORDED if decision is Decision.APPROVE else AuditAction.POST_REJECTED,
            now,
            {
                "role": step.role,
                "reason": reason,
                "team_id": ballot.team_id,
                "late": change.post_state is PostState.OVERDUE,
            },
        )
    ]
    if new_state is PostState.APPROVED:
        audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.POST_APPROVED, now, {"quorum": "complete"}))
    payload = PostDecided(
        by=user,
        decision=decision,
        state=new_state,
        reason=reason,
    )
    intents = [
        Intent(IntentKind.REFRESH_CARDS, ballot.change_id),
        Intent(IntentKind.MESSAGE, ballot.change_id, policy.channels.changes, replace(payload, thread=True)),
        Intent(IntentKind.MESSAGE, ballot.change_id, change.requester, payload),
    ]
    update = ChangeUpdate(at=now, post_state=new_state, approval=ballot.approval(Phase.POST))
    if new_state is PostState.REJECTED:
        intents += _review_required(change)
        if change.review is None:
            review = Review(now, now + policy.review.due_within_emergency, "its post-approval was refused")
            update = with_review(policy, update, review, change, audit, intents)
    return Write(update, audit, intents)


def _review_required(change: Change) -> list[Intent]:
    """A refused post-approval asks its people for a post-incident review (once each)."""
    return [
        Intent(
            IntentKind.MESSAGE,
            change.id,
            who,
            ReviewRequired(),
            dedupe_key=f"{change.id}:review-requested:{who}",
        )
        for who in dict.fromkeys((change.requester, change.implementer))
    ]


PRE = DecisionPhase(
    subject="the change",
    tag={},
    status=lambda change: change.status,
    steps=lambda change: change.steps,
    approvals=lambda change: change.approvals,
    write=_approval_write,
)
POST = DecisionPhase(
    subject="the emergency change",
    tag={"phase": "post"},
    status=lambda change: Status.PENDING_APPROVAL if change.post_approval_open else Status.CLOSED,
    steps=lambda change: change.post_steps,
    approvals=lambda change: change.post_approvals,
    write=_post_approval_write,
)
