"""Acks first. Slack gives an interaction 3 s to be acknowledged; a queued message can
wait a moment. Requests and outbox deliveries share one event loop, so while Slack
requests are in flight the outbox holds back, for a bounded time per delivery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class AckFirst:
    def __init__(self, *, max_hold: float = 0.5) -> None:
        self._max_hold = max_hold
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around one Slack request, from its arrival until its ack is written."""
        self._in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._quiet.set()

    async def wait_quiet(self) -> None:
        """Until no request is in flight, or `max_hold` seconds: background work never starves."""
        if self._in_flight == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self._max_hold)
