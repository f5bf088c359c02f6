"""Dispatches outbox rows: claims due rows, paces each channel to about one message a
second, honours Retry-After, backs off on errors, and never drops a message."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from bot.alarm import Alarm
from bot.gateway import Delivered, RetryLater, SlackGateway
from bot.priority import AckFirst
from domain.clock import Clock
from storage.models import OutboxRow
from storage.outbox import OutboxStore

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
PARALLEL_LANES = 8  # channels delivered at once; within a channel, one message at a time


def backoff_seconds(attempts: int) -> float:
    """Exponential with jitter, capped at five minutes: transient errors never give up."""
    base = min(MAX_BACKOFF, 2.0 ** max(0, attempts - 1))
    return base * (0.5 + random.random() / 2)


class OutboxDispatcher:
    def __init__(
        self,
        *,
        store: OutboxStore,
        gateway: SlackGateway,
        clock: Clock,
        pace: timedelta = timedelta(seconds=1),
        # Longer than any one delivery can take (Slack calls time out after SLACK_TIMEOUT).
        lease: timedelta = timedelta(seconds=30),
        batch: int = 50,
        lanes: int = PARALLEL_LANES,
        tick: timedelta = timedelta(seconds=1),
        ack_first: AckFirst | None = None,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._clock = clock
        self._pace = pace
        self._lease = lease
        self._batch = batch
        self._next_free: dict[str, datetime] = {}
        self._lock = asyncio.Lock()
        self._parallel = asyncio.Semaphore(lanes)
        self._again = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._alarm = Alarm(self.wake, horizon=tick.total_seconds())
        self._soonest: datetime | None = None  # the earliest row this process deferred
        self._ack_first = ack_first

    def wake(self) -> None:
        """Something was enqueued: dispatch now instead of at the next tick."""
        if self._lock.locked():
            self._again = True
            return
        task = asyncio.get_running_loop().create_task(self._run_guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_guarded(self) -> None:
        try:
            await self.dispatch_due()
        except Exception:  # a failing tick must not kill the loop; the next tick retries
            log.exception("outbox dispatch failed")

    async def dispatch_due(self) -> int:
        """One pass (plus follow-ups requested meanwhile); returns messages delivered."""
        delivered = 0
        async with self._lock:
            while True:
                self._again = False
                count, more = await self._pass()
                delivered += count
                if not (more or self._again):
                    break
            self._arm()
        return delivered

    def _arm(self) -> None:
        """A row paced or retried to a moment before the next tick: wake up then, so a
        paced channel gets its ~1 msg/s rather than one message per tick and a bit."""
        soonest, self._soonest = self._soonest, None
        if soonest is not None:
            self._alarm.set_in((soonest - self._clock.now()).total_seconds())

    async def _defer(self, row_id: int, *, due_at: datetime, error: str, count_attempt: bool = True) -> None:
        await self._store.retry_at(row_id, due_at=due_at, error=error, count_attempt=count_attempt)
        self._soonest = due_at if self._soonest is None else min(self._soonest, due_at)

    def stop(self) -> None:
        """No more timed wake-ups (shutdown)."""
        self._alarm.cancel()

    async def _pass(self) -> tuple[int, bool]:
        """Deliver a claimed batch: one lane per channel (in order within it), lanes in
        parallel, so a slow or paced channel holds up nothing else."""
        now = self._clock.now()
        rows = await self._store.claim_due(now=now, limit=self._batch, lease=self._lease)
        lanes: dict[str, list[OutboxRow]] = {}
        for row in rows:
            lane = row.channel or (f"change:{row.change_id}" if row.change_id else f"row:{row.id}")
            lanes.setdefault(lane, []).append(row)
        sent: list[tuple[int, datetime]] = []
        try:
            await asyncio.gather(*(self._lane(lane_rows, sent) for lane_rows in lanes.values()))
        finally:
            # One transaction settles the pass. Should this process die first, the rows'
            # leases run out and the channel-history check keeps them from going twice.
            await self._store.mark_all_sent(sent)
        return len(sent), len(rows) == self._batch

    async def _lane(self, rows: list[OutboxRow], sent: list[tuple[int, datetime]]) -> None:
        async with self._parallel:
            for row in rows:
                if await self._deliver_one(row):
                    assert row.id is not None
                    sent.append((row.id, self._clock.now()))

    async def _deliver_one(self, row: OutboxRow) -> int:
        assert row.id is not None
        if self._ack_first is not None:
            await self._ack_first.wait_quiet()
        key = row.channel
        free_at = await self._slot(key) if key else None
        if free_at is not None:
            await self._defer(row.id, due_at=free_at, error="paced", count_attempt=False)
            return 0
        outcome = await self._gateway.deliver(row)
        now = self._clock.now()
        if isinstance(outcome, Delivered):
            return 1  # settled with the rest of the pass
        if isinstance(outcome, RetryLater):
            wait = outcome.retry_after if outcome.retry_after is not None else backoff_seconds(row.attempts)
            due = now + timedelta(seconds=wait)
            if key and outcome.retry_after is not None:
                self._next_free[key] = max(self._next_free.get(key, due), due)
                await self._store.hold_channel(key, until=due)
            log.info("outbox %s %s: retry in %.1fs (%s)", row.id, row.kind, wait, outcome.error)
            await self._defer(row.id, due_at=due, error=outcome.error)
            return 0
        log.error("outbox %s %s undeliverable: %s", row.id, row.kind, outcome.error)
        await self._store.mark_dead(row.id, error=outcome.error)
        return 0

    async def _slot(self, channel: str) -> datetime | None:
        """None: send now. Else when the channel is free. The local note saves a database
        round trip when this process already knows the channel is busy."""
        now = self._clock.now()
        known = self._next_free.get(channel)
        if known is not None and known > now:
            return known
        busy_until = await self._store.reserve_slot(channel, now=now, pace=self._pace)
        self._next_free[channel] = busy_until or now + self._pace
        return busy_until

    async def drain(self, *, advance: object | None = None) -> None:
        """Wait for in-flight wake-ups (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class DeferredWaker:
    """Breaks the gateway <-> dispatcher cycle: built first, pointed at the dispatcher later."""

    def __init__(self) -> None:
        self.target: OutboxDispatcher | None = None

    def wake(self) -> None:
        if self.target is not None:
            self.target.wake()
