"""How often a refused click is written to a CR's audit trail.

A bystander clicking Approve twenty times should leave one line, not twenty: one audited
refusal per user, CR and action per window; the repeats inside the window are counted and
the count goes into the next entry written for that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import Clock

REFUSAL_WINDOW = timedelta(minutes=1)
MAX_TRACKED = 10_000  # keys remembered at once; expired ones are dropped first


@dataclass
class _Seen:
    written_at: datetime
    suppressed: int = 0


class RefusalLimiter:
    """In-process: with several replicas each writes at most one per window."""

    def __init__(self, *, clock: Clock, window: timedelta = REFUSAL_WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._seen: dict[tuple[str, str, str], _Seen] = {}

    def admit(self, *, user: str, change_id: str, action: str) -> int | None:
        """None: don't write this refusal (it is counted). Else write it, noting the
        returned number of repeats left unwritten since the last entry for this key."""
        now = self._clock.now()
        key = (user, change_id, action)
        seen = self._seen.get(key)
        if seen is not None and now - seen.written_at < self._window:
            seen.suppressed += 1
            return None
        if len(self._seen) >= MAX_TRACKED:
            self._forget_expired(now)
        self._seen[key] = _Seen(now)
        return seen.suppressed if seen is not None else 0

    def _forget_expired(self, now: datetime) -> None:
        for key in [k for k, s in self._seen.items() if now - s.written_at >= self._window]:
            del self._seen[key]
        if len(self._seen) >= MAX_TRACKED:  # all fresh: forget the oldest rather than grow
            oldest = min(self._seen, key=lambda k: self._seen[k].written_at)
            del self._seen[oldest]
