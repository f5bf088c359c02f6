"""When an approved change may start: inside its approved window, outside freezes and blackouts.

An approval binds to a window; starting days early, after the window closed or during a
freeze would do a change nobody approved. `opens_at` is the one place the early tolerance
is applied, so a pipeline gate (`gates.early`) can ask the same question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.calendar_policy import Blackout, Freeze, blackout_hits
from domain.enums import Category
from domain.intake import IntakeRejected
from domain.limits import MAX_REASON
from domain.model import AuditAction, AuditEntry, Change
from domain.policy import Policy
from domain.role_labels import role_label

INSTANT = timedelta(seconds=1)


class StartBlockKind(StrEnum):
    EARLY = "early"
    CLOSED = "window_closed"
    FREEZE = "freeze"
    BLACKOUT = "blackout"


@dataclass(frozen=True)
class StartBlock:
    kind: StartBlockKind
    reason: str  # one line, for the ephemeral refusal and the audit


def opens_at(starts_at: datetime, tolerance: timedelta) -> datetime:
    """The earliest moment a change whose window starts at `starts_at` may start."""
    return starts_at - tolerance


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %d %b %H:%M %Z}"


def start_block(
    *,
    change: Change,
    now: datetime,
    tolerance: timedelta,
    blackouts: Sequence[Blackout],
    freezes: Sequence[Freeze],
    zone: ZoneInfo,
) -> StartBlock | None:
    """Why `change` may not start at `now` (None: it may). Emergencies are exempt.

    A change approved with an exception (an extra step for running outside its windows or
    in a blackout) may run in its blackouts, and in the freezes its approvers already saw;
    a freeze declared after it was approved still stops it.
    """
    draft = change.draft
    if draft.category is Category.EMERGENCY:
        return None
    earliest = opens_at(draft.starts_at, tolerance)
    if now < earliest:
        return StartBlock(
            StartBlockKind.EARLY,
            f"its approved window opens {_when(draft.starts_at, zone)}; "
            f"it may start from {_when(earliest, zone)}",
        )
    if now >= draft.ends_at:
        return StartBlock(
            StartBlockKind.CLOSED,
            f"its approved window closed {_when(draft.ends_at, zone)}; reschedule it to run again",
        )
    freeze = binding_freeze(change=change, now=now, freezes=freezes)
    if freeze is not None:
        since = _when(freeze.started_at, zone)
        until = f", until {_when(freeze.ended_at, zone)}" if freeze.ended_at else ""
        # The refusal may keep `<@U…>` mentions the domain wrote: the reason's are defused.
        reason = f": {freeze.reason.replace('<', '‹').replace('>', '›')}" if freeze.reason else ""
        return StartBlock(StartBlockKind.FREEZE, f"a change freeze is on (since {since}{until}){reason}")
    blackout = binding_blackout(change=change, now=now, blackouts=blackouts, zone=zone)
    if blackout is not None:
        return StartBlock(StartBlockKind.BLACKOUT, f"it is inside the blackout '{blackout}'")
    return None


def _excepted(change: Change) -> bool:
    """Approved with the extra exception step (to run outside its windows or in a blackout)."""
    return any(step.purpose == "exception" for step in change.steps)


def binding_freeze(*, change: Change, now: datetime, freezes: Sequence[Freeze]) -> Freeze | None:
    """The freeze in force at `now` that holds `change` back, if any: none holds an
    emergency, and one its exception's approvers already saw does not hold it either."""
    if change.draft.category is Category.EMERGENCY:
        return None
    seen = change.approved_at if _excepted(change) and change.approved_at else None
    live = [f for f in freezes if f.started_at <= now and (f.ended_at is None or now < f.ended_at)]
    return next((f for f in live if seen is None or f.started_at > seen), None)


def binding_blackout(
    *, change: Change, now: datetime, blackouts: Sequence[Blackout], zone: ZoneInfo
) -> str | None:
    """The name of the blackout in force at `now` that holds `change` back, if any (its
    categories say whom it holds; an approved exception lets the change run in it)."""
    if change.draft.category is Category.EMERGENCY or _excepted(change):
        return None
    hits = blackout_hits(
        blackouts=blackouts,
        freezes=(),
        category=change.draft.category,
        start=now,
        end=now + INSTANT,
        zone=zone,
    )
    return hits[0].name if hits else None


def gate_start(
    *,
    change: Change,
    user: str,
    now: datetime,
    policy: Policy,
    freezes: Sequence[Freeze],
    override: str,
    allowed: bool,
    tolerance: timedelta | None = None,
) -> tuple[str | None, AuditEntry | None]:
    """(refusal, None) when the start is blocked; (None, the override's audit entry) when an
    override role (`allowed`) starts it anyway with a reason; (None, None) when nothing blocks.
    `tolerance`: how early it may start (default: the policy's `start_tolerance`)."""
    block = start_block(
        change=change,
        now=now,
        tolerance=policy.start_tolerance if tolerance is None else tolerance,
        blackouts=policy.blackouts,
        freezes=freezes,
        zone=policy.zone,
    )
    if block is None:
        return None, None
    roles = " or ".join(role_label(r, policy.role_labels) for r in policy.start_override_roles)
    if not override:
        how = f'`/change start {change.id} --override "reason"`'
        return (f"{block.reason}; {roles} can start it anyway with {how}" if roles else block.reason), None
    if not allowed:
        return f"{block.reason}; only {roles or 'nobody'} can start it anyway", None
    if len(override) > MAX_REASON:
        raise IntakeRejected({"override": f"Keep the reason to {MAX_REASON} characters."})
    details = {"blocked": block.reason, "kind": block.kind.value, "reason": override}
    return None, AuditEntry(user, AuditAction.START_OVERRIDDEN, now, details)
