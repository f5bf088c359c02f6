"""Deployments waiting at a change's gate (a GitHub deployment protection rule): which
change a deployment names, what a waiting one looks like, and what the pipeline's
deployment statuses mean for the change. Pure values; the use case is
`domain/usecases/deployments.py`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.gates import GateDecision, PipelineEvent

# A change id as people write it in a branch, a commit message or a PR title.
CHANGE_REF = re.compile(r"(?<![A-Za-z0-9])CR-(\d{4})-(\d{4,6})(?![0-9])", re.IGNORECASE)

HOW_TO_NAME = (
    "Name an approved change in the deployment: put its id (like CR-2026-0042) in the branch "
    "or tag, the commit message, the pull request title or a workflow input"
)


class GateStatus(StrEnum):
    """Where a deployment waiting at a gate stands."""

    PENDING = "pending"  # asked, not answered yet
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"  # GitHub refused our answer (already answered, run gone): nothing to send


# GitHub's deployment status states, as the change moves for them; others mean nothing.
STATUS_EVENTS: dict[str, PipelineEvent] = {
    "in_progress": PipelineEvent.STARTED,
    "success": PipelineEvent.COMPLETED,
    "failure": PipelineEvent.FAILED,
    "error": PipelineEvent.FAILED,
}


def find_change_ref(texts: Iterable[str | None]) -> str | None:
    """The first change id in `texts` (in their order), normalised to CR-YYYY-NNNN."""
    for text in texts:
        if not text:
            continue
        found = CHANGE_REF.search(text)
        if found:
            return f"CR-{found.group(1)}-{found.group(2)}"
    return None


@dataclass(frozen=True)
class DeploymentRequest:
    """A deployment asking to pass: what GitHub told us, enough to answer it later."""

    external_id: str  # "<deployment id>:<environment>": a redelivery is the same request
    repository: str  # owner/name
    environment: str
    callback_url: str
    installation_id: int | None
    run_url: str | None  # the workflow run, for the change's source and the comment
    ref: str | None
    texts: tuple[str, ...]  # ref, commit message, PR titles, inputs: where a change id may be
    sha: str | None = None  # the commit deployed: its message is read when the texts name no change


@dataclass(frozen=True)
class NewGate:
    """A request as first stored: its change (if known now) or the answer already decided."""

    request: DeploymentRequest
    change_id: str | None
    service: str | None
    comment: str | None  # the rejection to send when no change could be found or filed
    hold: bool  # claimed by the caller while it files the mapped standard change


@dataclass(frozen=True)
class PendingGate:
    """A stored request claimed for answering; `version` guards the answer."""

    id: int
    change_id: str | None
    service: str | None
    repository: str
    environment: str
    callback_url: str
    installation_id: int | None
    version: int
    comment: str | None = None  # set when the answer is already decided (no change found)


@dataclass(frozen=True)
class GateWait:
    """A deployment waiting at a change's gate, as the card shows it."""

    repository: str
    environment: str
    since: datetime


class CallbackResult(StrEnum):
    SENT = "sent"  # GitHub took the answer
    REFUSED = "refused"  # a 4xx: it will never take it (answered already, run gone)
    FAILED = "failed"  # 5xx or network: try again later


@dataclass(frozen=True)
class Verdict:
    """The answer to send for a pending request, or None to keep it waiting."""

    state: GateStatus
    comment: str

    @staticmethod
    def of(decision: GateDecision, comment: str) -> Verdict | None:
        if decision is GateDecision.WAIT:
            return None
        return Verdict(GateStatus.APPROVED if decision is GateDecision.GO else GateStatus.REJECTED, comment)


def asked_by(repository: str, environment: str) -> str:
    """The gate's asker for the audit: "github:OWNER/REPO@ENV"."""
    return f"github:{repository}@{environment}"
