"""The use cases' errors, raised to the handlers, which answer each in one line."""

from __future__ import annotations

from collections.abc import Sequence

from domain.conflicts import Conflict


class ConflictsFound(Exception):
    """Open changes overlap this one: shown as a warning; submitting again confirms."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        super().__init__(", ".join(c.change_id for c in conflicts))
        self.conflicts = list(conflicts)


class ChangeNotFound(Exception):
    def __init__(self, change_id: str) -> None:
        super().__init__(f"{change_id} does not exist")
        self.change_id = change_id


class DecisionConflict(Exception):
    """The CR kept changing under us; the user should simply click again."""
