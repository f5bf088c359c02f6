"""The one retry of version-guarded writes, as plain values."""

from __future__ import annotations

import pytest

from domain.errors import DecisionConflict
from domain.retry import WRITE_ATTEMPTS, until_stored


async def test_an_attempt_that_loses_the_race_runs_again_on_fresh_state() -> None:
    tries: list[int] = []

    async def attempt() -> str | None:
        tries.append(1)
        return "stored" if len(tries) == 3 else None

    assert await until_stored("CR-2026-0001", attempt) == "stored"
    assert len(tries) == 3


async def test_a_contended_change_gives_up_with_a_decision_conflict() -> None:
    tries: list[int] = []

    async def attempt() -> str | None:
        tries.append(1)
        return None

    with pytest.raises(DecisionConflict):
        await until_stored("CR-2026-0001", attempt)
    assert len(tries) == WRITE_ATTEMPTS
