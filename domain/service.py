"""The change use cases. Slack handlers and scheduler jobs both call these; storage,
Slack and time come in through Protocols so this module stays pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain import quorum
from domain.clock import Clock
from domain.enums import Decision, Status
from domain.intake import ChangeForm, IntakeRejected, validate_form
from domain.intents import Intent, IntentKind
from domain.model import (
    SYSTEM_ACTOR,
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    NewChange,
    StepSnapshot,
)
from domain.policy import Policy
from domain.risk import assess_risk

MAX_REASON = 1000
UPCOMING_DAYS = 14


class ListScope(StrEnum):
    MINE = "mine"
    PENDING = "pending"
    UPCOMING = "upcoming"


@dataclass(frozen=True)
class ChangeQuery:
    requester: str | None = None
    statuses: tuple[Status, ...] = ()
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    limit: int = 20


class ChangeRepository(Protocol):
    async def create_change(
        self,
        change: NewChange,
        *,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
    ) -> Change:
        """Allocate the next CR id, store the CR with its audit and the intents made
        for that id, all in one transaction."""
        ...

    async def get_change(self, change_id: str) -> Change | None: ...

    async def record_decision(
        self,
        *,
        change_id: str,
        expected_version: int,
        entry: ApprovalEntry,
        new_status: Status,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        """Store the decision only if the CR is still at `expected_version` and the user
        has not decided yet; False means someone else won the race."""
        ...

    async def append_audit(self, change_id: str, entry: AuditEntry) -> None: ...

    async def list_changes(self, query: ChangeQuery) -> list[Change]: ...


class Directory(Protocol):
    async def expand(self, refs: Sequence[str]) -> frozenset[str]:
        """User ids for a mix of user ids and user-group ids."""
        ...


class Notifier(Protocol):
    def wake(self) -> None:
        """New intents are stored: dispatch soon rather than at the next tick."""
        ...


class ChangeNotFound(Exception):
    def __init__(self, change_id: str) -> None:
        super().__init__(f"{change_id} does not exist")
        self.change_id = change_id


class DecisionConflict(Exception):
    """The CR kept changing under us; the user should simply click again."""


@dataclass(frozen=True)
class DecisionOutcome:
    change: Change
    refusal: quorum.Refusal | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


# Refusals worth an audit line: someone tried to act without authority.
AUDITED_REFUSALS = frozenset({quorum.Refusal.NOT_ELIGIBLE, quorum.Refusal.OWN_REQUEST})


class ChangeService:
    def __init__(
        self,
        *,
        repository: ChangeRepository,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
        policy: Policy,
    ) -> None:
        self._repo = repository
        self._directory = directory
        self._notifier = notifier
        self._clock = clock
        self.policy = policy

    # --- intake -----------------------------------------------------------------
    async def submit_change(self, *, form: ChangeForm, requester: str, team_id: str | None = None) -> Change:
        """Validate, score, snapshot the approval steps and store the CR with its posts."""
        now = self._clock.now()
        draft = validate_form(form, policy=self.policy, now=now)
        risk = assess_risk(self.policy.risk_matrix, impact=draft.impact, likelihood=draft.likelihood)
        steps = tuple(
            StepSnapshot(role=spec.role, count=spec.count, members=tuple(self.policy.roles[spec.role]))
            for spec in self.policy.steps_for(category=draft.category, risk=risk)
        )
        status = Status.PENDING_APPROVAL if steps else Status.APPROVED
        audit = [
            AuditEntry(
                requester,
                AuditAction.SUBMITTED,
                now,
                {
                    "category": draft.category.value,
                    "risk": risk.value,
                    "team_id": team_id,
                    "steps": [{"role": s.role, "count": s.count} for s in steps],
                },
            )
        ]
        if not steps:
            why = (
                f"pre-approved standard change '{draft.catalog_id}'"
                if draft.catalog_id
                else f"no approval needed for a {draft.category.value} change of {risk.value} risk"
            )
            audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.AUTO_APPROVED, now, {"reason": why}))
        change = await self._repo.create_change(
            NewChange(
                draft=draft,
                risk=risk,
                status=status,
                requester=requester,
                created_at=now,
                steps=steps,
            ),
            audit=audit,
            intents=lambda change_id: self._intake_intents(change_id, requester, status),
        )
        self._notifier.wake()
        return change

    def _intake_intents(self, change_id: str, requester: str, status: Status) -> list[Intent]:
        channel = self.policy.channels.changes
        intents = [
            Intent(IntentKind.POST_CARD, change_id, channel, dedupe_key=f"{change_id}:card:{channel}"),
            Intent(
                IntentKind.MESSAGE,
                change_id,
                requester,
                {"template": "filed", "status": status.value},
                dedupe_key=f"{change_id}:filed",
            ),
        ]
        if status is Status.PENDING_APPROVAL:
            intents.append(Intent(IntentKind.DM_APPROVERS, change_id, dedupe_key=f"{change_id}:dm-approvers"))
        return intents

    # --- decisions --------------------------------------------------------------
    async def check_decision(self, *, change_id: str, user: str) -> quorum.Refusal | None:
        """Would an approval by `user` be accepted right now? (Used before asking for a reason.)"""
        change = await self._require(change_id)
        verdict = quorum.decide(
            status=change.status,
            requester=change.requester,
            steps=change.steps,
            approvals=change.approvals,
            user=user,
            eligible_steps=await self._eligible_steps(change, user),
            decision=Decision.REJECT,
        )
        return verdict if isinstance(verdict, quorum.Refusal) else None

    async def decide(
        self,
        *,
        change_id: str,
        user: str,
        decision: Decision,
        reason: str = "",
        team_id: str | None = None,
    ) -> DecisionOutcome:
        reason = reason.strip()
        if decision is Decision.REJECT and not reason:
            raise IntakeRejected({"reason": "Say why you reject the change."})
        if len(reason) > MAX_REASON:
            raise IntakeRejected({"reason": f"Keep the reason to {MAX_REASON} characters."})
        for _attempt in range(8):
            change = await self._require(change_id)
            verdict = quorum.decide(
                status=change.status,
                requester=change.requester,
                steps=change.steps,
                approvals=change.approvals,
                user=user,
                eligible_steps=await self._eligible_steps(change, user),
                decision=decision,
            )
            now = self._clock.now()
            if isinstance(verdict, quorum.Refusal):
                if verdict in AUDITED_REFUSALS:
                    await self._repo.append_audit(
                        change_id,
                        AuditEntry(
                            user,
                            AuditAction.DECISION_REFUSED,
                            now,
                            {
                                "decision": decision.value,
                                "refusal": verdict.value,
                                "team_id": team_id,
                            },
                        ),
                    )
                return DecisionOutcome(change, verdict)
            entry = ApprovalEntry(user, decision, verdict.step_index, now, reason)
            step = change.steps[verdict.step_index]
            audit = [
                AuditEntry(
                    user,
                    AuditAction.APPROVAL_RECORDED if decision is Decision.APPROVE else AuditAction.REJECTED,
                    now,
                    {
                        "step": verdict.step_index,
                        "role": step.role,
                        "reason": reason,
                        "team_id": team_id,
                    },
                )
            ]
            if verdict.new_status is Status.APPROVED:
                audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.APPROVED, now, {"quorum": "complete"}))
            stored = await self._repo.record_decision(
                change_id=change_id,
                expected_version=change.version,
                entry=entry,
                new_status=verdict.new_status,
                audit=audit,
                intents=[
                    Intent(IntentKind.REFRESH_CARDS, change_id),
                    Intent(
                        IntentKind.MESSAGE,
                        change_id,
                        change.requester,
                        {
                            "template": "decided",
                            "by": user,
                            "decision": decision.value,
                            "status": verdict.new_status.value,
                            "role": step.role,
                            "reason": reason,
                        },
                    ),
                ],
            )
            if stored:
                self._notifier.wake()
                return DecisionOutcome(await self._require(change_id))
        raise DecisionConflict(change_id)

    # --- reading ----------------------------------------------------------------
    async def get_change(self, *, change_id: str) -> Change:
        return await self._require(change_id)

    async def list_changes(self, *, scope: ListScope, user: str) -> list[Change]:
        now = self._clock.now()
        if scope is ListScope.MINE:
            return await self._repo.list_changes(ChangeQuery(requester=user))
        if scope is ListScope.PENDING:
            return await self._repo.list_changes(ChangeQuery(statuses=(Status.PENDING_APPROVAL,)))
        return await self._repo.list_changes(
            ChangeQuery(
                statuses=(Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS),
                starts_from=now - timedelta(hours=1),
                starts_before=now + timedelta(days=UPCOMING_DAYS),
            )
        )

    async def approvers_to_notify(self, *, change_id: str) -> list[str]:
        """Everyone who can still sign an open step, except the requester."""
        change = await self._require(change_id)
        if change.status is not Status.PENDING_APPROVAL:
            return []
        decided = {entry.user for entry in change.approvals}
        users: set[str] = set()
        for index in quorum.open_steps(change.steps, change.approvals):
            users |= await self._directory.expand(change.steps[index].members)
        return sorted(users - decided - {change.requester})

    async def _eligible_steps(self, change: Change, user: str) -> set[int]:
        eligible = set()
        for index, step in enumerate(change.steps):
            if user in step.members or user in await self._directory.expand(step.members):
                eligible.add(index)
        return eligible

    async def _require(self, change_id: str) -> Change:
        change = await self._repo.get_change(change_id.strip().upper())
        if change is None:
            raise ChangeNotFound(change_id)
        return change
