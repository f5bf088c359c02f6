"""Delegation: an approver away hands their approvals to another member of their role(s)
for a while (`/change delegate @user until 2026-12-24`). While it lasts the delegate may
sign every step the delegator may, and gets the approval messages instead of them.
Plain rules over plain values; the use case (usecases/delegation.py) resolves roles."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.role_labels import role_label

MAX_DELEGATION = timedelta(days=366)


@dataclass(frozen=True)
class Delegation:
    """`delegator`'s approvals go to `delegate` from `starts_at` until `until` (exclusive)."""

    delegator: str
    delegate: str
    starts_at: datetime
    until: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until


@dataclass(frozen=True)
class Approver:
    """Someone who can still approve a step: themselves, or `for_user`'s delegate."""

    user: str
    for_user: str | None = None


def until_end_of(day: date, zone: ZoneInfo) -> datetime:
    """ "until 2026-12-24" means through that whole day, in the policy's time zone."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def delegation_refusal(
    *,
    delegator: str,
    delegate: str,
    until: datetime,
    now: datetime,
    delegator_roles: Collection[str],
    delegate_roles: Collection[str],
    labels: Mapping[str, str] | None = None,
) -> str | None:
    """Why this delegation is refused (None: it may start). The delegate must be another
    person sharing one of the delegator's roles, for a period that has not ended."""
    if delegate == delegator:
        return "you cannot delegate to yourself"
    if not delegator_roles:
        return "you are in none of the policy's roles, so there is nothing to delegate"
    if not set(delegator_roles) & set(delegate_roles):
        roles = ", ".join(role_label(r, labels) for r in sorted(delegator_roles))
        return f"they are not a member of your roles ({roles})"
    if until <= now:
        return "that day is past: give a day from today on"
    if until - now > MAX_DELEGATION:
        return "delegate for at most a year"
    return None


def delegators_of(user: str, delegations: Iterable[Delegation], *, now: datetime) -> set[str]:
    """Whose approvals `user` holds right now."""
    return {d.delegator for d in delegations if d.delegate == user and d.active(now)}


def delegates_for(
    users: Collection[str], delegations: Iterable[Delegation], *, now: datetime
) -> dict[str, str]:
    """Delegator → delegate, for those of `users` who are away right now."""
    return {d.delegator: d.delegate for d in delegations if d.delegator in users and d.active(now)}
