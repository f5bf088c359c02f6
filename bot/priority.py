"""Acks first. Slack gives an interaction 3 s to be acknowledged; a queued message can
wait a moment. Requests and outbox deliveries share one event loop, so while Slack
requests are in flight the outbox holds back: one delivery per `max_hold` seconds in all
(not per delivery lane, or eight lanes would take sixteen turns a second from the acks),
so background work is slowed, never starved."""

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
        self._next_turn = 0.0  # loop time from which one held-back delivery may go anyway

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Around one Slack request, from its arrival until its ack is written."""
        if self._in_flight == 0:  # a busy spell begins: the first held-back turn is max_hold away
            self._next_turn = asyncio.get_running_loop().time() + self._max_hold
        self._in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._quiet.set()

    async def wait_quiet(self) -> None:
        """Until no request is in flight, or this caller's turn comes: while requests keep
        arriving, one caller in all goes every `max_hold` seconds."""
        loop = asyncio.get_running_loop()
        while self._in_flight:
            now = loop.time()
            if now >= self._next_turn:
                self._next_turn = now + self._max_hold
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self._next_turn - now)
