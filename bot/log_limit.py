"""Log lines that anyone on the internet can trigger, at most one per interval."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from domain.clock import Clock

DEFAULT_EVERY = timedelta(seconds=60)


class LogLimiter:
    """One kind of line (say, "rejected unsigned request"): the first goes out, the next
    ones within `every` are only counted, and the next line that goes out says how many
    were left out. A flood of bad requests costs a line a minute, not a line each."""

    def __init__(self, logger: logging.Logger, *, clock: Clock, every: timedelta = DEFAULT_EVERY) -> None:
        self._logger = logger
        self._clock = clock
        self._every = every
        self._last: datetime | None = None
        self._suppressed = 0

    def log(self, level: int, message: str, *args: object) -> None:
        now = self._clock.now()
        if self._last is not None and now - self._last < self._every:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (and %d more like it since %s, not logged)"
            args = (*args, self._suppressed, f"{self._last:%H:%M:%S}")
        self._logger.log(level, message, *args)
        self._last = now
        self._suppressed = 0
