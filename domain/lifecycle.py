"""The CR state machine: which status may follow which, so no path skips a gate."""

from __future__ import annotations

from domain.enums import Status

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING_APPROVAL: frozenset(
        {Status.APPROVED, Status.REJECTED, Status.CANCELLED, Status.CHANGES_REQUESTED}
    ),
    # Edited (or moved) after its approval: what was approved changed, so it is asked again.
    Status.APPROVED: frozenset({Status.IN_PROGRESS, Status.CANCELLED, Status.PENDING_APPROVAL}),
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK}),
    Status.COMPLETED: frozenset({Status.CLOSED}),
    Status.FAILED: frozenset({Status.CLOSED, Status.ROLLED_BACK}),
    Status.ROLLED_BACK: frozenset({Status.CLOSED}),
    # Edited and resubmitted (it keeps its id); approved at once if it needs no sign-off now.
    Status.REJECTED: frozenset({Status.PENDING_APPROVAL, Status.APPROVED}),
    Status.CHANGES_REQUESTED: frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.CANCELLED}),
    Status.CANCELLED: frozenset(),
    Status.CLOSED: frozenset(),
}

OPEN_STATUSES = frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.IN_PROGRESS})


class InvalidTransition(Exception):
    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"a change that is {current.value} cannot become {target.value}")
        self.current = current
        self.target = target


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def transition(current: Status, target: Status) -> Status:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    return target
