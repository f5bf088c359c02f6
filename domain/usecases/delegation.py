"""Delegation: `/change delegate @user until 2026-12-24` hands an approver's approvals to
another member of their role(s) while they are away; `/change delegate off` ends it.
Audited, and the delegate told. Who may then sign what is decided in base.py
(`_eligible_steps`) and approvals.py (who is asked and named)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.delegation import Delegation, delegation_refusal, until_end_of
from domain.intents import Intent, IntentKind
from domain.messages import DelegationNews
from domain.model import AuditAction, AuditEntry
from domain.usecases.base import UseCase


@dataclass(frozen=True)
class DelegationOutcome:
    """The delegation started or ended, or why not (`refusal`)."""

    delegation: Delegation | None
    refusal: str | None = None


class Delegations(UseCase):
    async def delegate(self, *, user: str, delegate: str, until: date) -> DelegationOutcome:
        """Hand `user`'s approvals to `delegate` through the day `until` (policy time zone),
        replacing any delegation of theirs in force."""
        now = self._clock.now()
        ends = until_end_of(until, self.policy.zone)
        refusal = delegation_refusal(
            delegator=user,
            delegate=delegate,
            until=ends,
            now=now,
            delegator_roles=await self._roles_of(user),
            delegate_roles=await self._roles_of(delegate),
            labels=self.policy.role_labels,
        )
        if refusal:
            details = {
                "action": "delegate",
                "delegate": delegate,
                "until": until.isoformat(),
                "refusal": refusal,
            }
            await self._repo.append_audit(None, AuditEntry(user, AuditAction.ACTION_REFUSED, now, details))
            return DelegationOutcome(None, refusal)
        delegation = Delegation(user, delegate, now, ends)
        details = {"delegate": delegate, "until": ends.isoformat()}
        news = DelegationNews(delegator=user, until=ends)
        await self._repo.start_delegation(
            delegation,
            now=now,
            audit=[AuditEntry(user, AuditAction.DELEGATED, now, details)],
            intents=[Intent(IntentKind.MESSAGE, None, delegate, news)],
        )
        self._notifier.wake()
        return DelegationOutcome(delegation)

    async def end_delegation(self, *, user: str) -> DelegationOutcome:
        """`/change delegate off`: the approvals are the user's own again."""
        now = self._clock.now()
        current = [d for d in await self._repo.delegations(now=now) if d.delegator == user]
        if not current:
            return DelegationOutcome(None, "you have no delegation in force")
        last = current[-1]
        ended = await self._repo.end_delegation(
            delegator=user,
            now=now,
            audit=[AuditEntry(user, AuditAction.DELEGATION_ENDED, now, {"delegate": last.delegate})],
            intents=[
                Intent(
                    IntentKind.MESSAGE,
                    None,
                    last.delegate,
                    DelegationNews(delegator=user, until=now, ended=True),
                )
            ],
        )
        if ended is None:
            return DelegationOutcome(None, "you have no delegation in force")
        self._notifier.wake()
        return DelegationOutcome(ended)

    async def _roles_of(self, user: str) -> set[str]:
        return {role for role in self.policy.roles if await self._in_roles(user, [role])}
