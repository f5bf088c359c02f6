"""The pipeline gate: may a deploy of a change (of one of its services) go now, wait,
or stop?

A pipeline files or names a change, then asks its gate before deploying. Pure: the
change, the freezes in force, the policy and the moment in; a decision and one sentence
a person can act on out. The window, freeze and blackout rules are the start button's
(`domain/start_rules.py`), with the gate's own early allowance (`gates.early`).

Emergencies: declared, they are approved at once (or once the on-call gives the
go-ahead) and may deploy before their post-approval, fix first; freezes and blackouts
never hold them. A post-approval that was rejected stops them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from domain import quorum
from domain.calendar_policy import Freeze
from domain.enums import Decision, Status
from domain.model import Change, PostState
from domain.policy import Policy
from domain.read_models import ProgressAction
from domain.role_labels import role_label
from domain.start_rules import binding_blackout, binding_freeze, opens_at

# A pipeline acts as a principal named "api:<token name>" or "github:<what asked>".
PIPELINE_PREFIXES = ("api:", "github:")


class GateDecision(StrEnum):
    GO = "go"  # deploy now
    WAIT = "wait"  # not decided yet, or too early: ask again later
    STOP = "stop"  # this change will not let it deploy (as it stands)


@dataclass(frozen=True)
class GateAnswer:
    decision: GateDecision
    reason: str  # one sentence for the pipeline's log and the person reading it


class PipelineEvent(StrEnum):
    """What a pipeline reports about the change it deploys."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


# Each event moves the change as the card's button of the same name does.
EVENT_ACTIONS: dict[PipelineEvent, ProgressAction] = {
    PipelineEvent.STARTED: ProgressAction.START,
    PipelineEvent.COMPLETED: ProgressAction.COMPLETE,
    PipelineEvent.FAILED: ProgressAction.FAIL,
    PipelineEvent.ROLLED_BACK: ProgressAction.ROLLBACK,
}

_ENDED = {
    Status.CANCELLED: "was cancelled",
    Status.COMPLETED: "is completed",
    Status.FAILED: "failed",
    Status.ROLLED_BACK: "was rolled back",
    Status.CLOSED: "is closed",
}


def is_pipeline_principal(actor: str) -> bool:
    """A pipeline (an API token or the GitHub App), never a person: Slack ids have no colon."""
    return actor.startswith(PIPELINE_PREFIXES) and len(actor) > max(map(len, PIPELINE_PREFIXES))


def decide_gate(
    *, change: Change, service: str | None, now: datetime, policy: Policy, freezes: Sequence[Freeze]
) -> GateAnswer:
    """Go when the change is approved or in progress, `service` (if named) is one of its
    services, `now` is within [window start - gates.early, window end) and no freeze or
    blackout holds it; wait while it awaits approval or its gate has not opened yet;
    stop otherwise."""
    refusal = _ended(change) or _out_of_scope(change, service)
    if refusal:
        return GateAnswer(GateDecision.STOP, refusal)
    draft = change.draft
    if now >= draft.ends_at:
        return GateAnswer(
            GateDecision.STOP,
            f"{change.id}'s window closed at {_utc(draft.ends_at)}; reschedule it to deploy",
        )
    if change.status is Status.PENDING_APPROVAL:
        open_steps = _open_steps(change, policy.role_labels)
        return GateAnswer(GateDecision.WAIT, f"{change.id} is waiting for approval: {open_steps}")
    if change.status is Status.CHANGES_REQUESTED:
        return GateAnswer(
            GateDecision.WAIT,
            f"{change.id} is back with its requester: an approver asked for changes before approving",
        )
    early = policy.gates.early
    if now < opens_at(draft.starts_at, early):
        before = f"the gate opens {_span(early)} before" if early else "the gate opens then"
        return GateAnswer(GateDecision.WAIT, f"the window opens at {_utc(draft.starts_at)}; {before}")
    freeze = binding_freeze(change=change, now=now, freezes=freezes)
    if freeze is not None:
        why = freeze.reason.strip() or "no reason given"
        return GateAnswer(GateDecision.STOP, f"freeze in force: {why} (since {_utc(freeze.started_at)})")
    blackout = binding_blackout(change=change, now=now, blackouts=policy.blackouts, zone=policy.zone)
    if blackout is not None:
        return GateAnswer(GateDecision.STOP, f"blackout in force: {blackout}")
    state = "is in progress" if change.status is Status.IN_PROGRESS else "is approved"
    return GateAnswer(GateDecision.GO, f"{change.id} {state}; its window is open until {_utc(draft.ends_at)}")


def _ended(change: Change) -> str | None:
    """Why a change no longer lets anything deploy, if it does not."""
    if change.status is Status.REJECTED:
        rejection = next((a for a in reversed(change.approvals) if a.decision is Decision.REJECT), None)
        if rejection is None:
            return f"{change.id} was rejected"
        because = f": {rejection.reason.strip()}" if rejection.reason.strip() else ""
        return f"{change.id} was rejected by {rejection.user}{because}"
    if change.status in _ENDED:
        return f"{change.id} {_ENDED[change.status]}; file a new change to deploy again"
    if change.post_state is PostState.REJECTED:
        return f"{change.id}'s post-approval was rejected; it may not deploy again"
    return None


def _out_of_scope(change: Change, service: str | None) -> str | None:
    services = change.draft.services
    if service is None or service in services:
        return None
    return f"service '{service}' is not in {change.id} ({', '.join(services)})"


def _open_steps(change: Change, labels: Mapping[str, str]) -> str:
    """The steps still short of approvals, as "Tech lead 0/1, CTO 1/2" (the policy's labels)."""
    counts = quorum.approvals_per_step(change.steps, change.approvals)
    return ", ".join(
        f"{role_label(step.role, labels)} {counts[i]}/{step.count}"
        for i, step in enumerate(change.steps)
        if counts[i] < step.count
    )


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _span(delta: timedelta) -> str:
    """30 minutes, 1 hour, 1 hour 30 minutes, 45 seconds: how people say it."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"
