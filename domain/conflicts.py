"""Conflicts: another open change touching the same service (or one the policy lists as
dependent) in an overlapping window. A warning, not a refusal: people decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.enums import Status
from domain.model import Change

# A change sent back for changes still holds its window: it is meant to go ahead once edited.
OPEN_FOR_CONFLICTS = (Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS, Status.CHANGES_REQUESTED)


@dataclass(frozen=True)
class Conflict:
    change_id: str
    title: str
    services: tuple[str, ...]  # the shared or dependent services
    starts_at: datetime
    ends_at: datetime


def related_services(services: Sequence[str], dependencies: Mapping[str, Sequence[str]]) -> set[str]:
    """The services themselves, what they depend on, and what depends on them."""
    related = set(services)
    for service in services:
        related |= set(dependencies.get(service, ()))
    related |= {dependent for dependent, needs in dependencies.items() if set(needs) & set(services)}
    return related


def find_conflicts(
    *,
    services: Sequence[str],
    start: datetime,
    end: datetime,
    others: Sequence[Change],
    dependencies: Mapping[str, Sequence[str]],
    exclude_id: str | None = None,
) -> list[Conflict]:
    related = related_services(services, dependencies)
    found = []
    for other in others:
        if other.id == exclude_id or other.status not in OPEN_FOR_CONFLICTS:
            continue
        if not (other.draft.starts_at < end and start < other.draft.ends_at):
            continue
        shared = tuple(s for s in other.draft.services if s in related)
        if shared:
            found.append(
                Conflict(other.id, other.draft.title, shared, other.draft.starts_at, other.draft.ends_at)
            )
    return sorted(found, key=lambda c: (c.starts_at, c.change_id))
