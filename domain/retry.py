"""The one retry of a version-guarded write: read the CR, decide, write only if it is still
at the version read; if another click or replica moved it meanwhile, decide again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from domain.errors import DecisionConflict

Outcome = TypeVar("Outcome")
WRITE_ATTEMPTS = 8  # a CR changed under us this often is contended: the user clicks again


async def until_stored(change_id: str, attempt: Callable[[], Awaitable[Outcome | None]]) -> Outcome:
    """Run `attempt` until it returns an outcome; None means its conditional write lost the
    race (the CR moved), so it runs again on the fresh state. DecisionConflict after
    WRITE_ATTEMPTS losses."""
    for _ in range(WRITE_ATTEMPTS):
        outcome = await attempt()
        if outcome is not None:
            return outcome
    raise DecisionConflict(change_id)
