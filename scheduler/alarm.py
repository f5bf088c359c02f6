"""A wake-up between ticks, for work that comes due sooner than the next tick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SLACK = 0.002  # wake a hair after the moment, never a hair before it


class Alarm:
    """At most one pending wake-up; setting it again replaces the earlier one. Delays of
    a tick or more are ignored: the tick itself comes first."""

    def __init__(self, ring: Callable[[], None], *, horizon: float) -> None:
        self._ring = ring
        self._horizon = horizon
        self._timer: asyncio.TimerHandle | None = None

    def set_in(self, delay: float | None) -> None:
        if delay is None or not 0 < delay < self._horizon:
            return
        self.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay + SLACK, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._ring()
