"""Dispatches outbox rows: claims due rows, paces each channel to about one message a
second, honours Retry-After, backs off on errors, and never drops a message."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.gateway import Delivered, RetryLater, SlackGateway
from bot.priority import AckFirst
from domain.clock import Clock
from scheduler.alarm import Alarm
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
        # A send is started only with this much lease left: one Slack call's timeout.
        send_budget: timedelta = timedelta(seconds=10),
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
        self._deferred: list[datetime] = []  # heap: when rows this process put back come due
        self._ack_first = ack_first
        self._stopping = False
        self._send_budget = send_budget

    def wake(self) -> None:
        """Something was enqueued: dispatch now instead of at the next tick."""
        if self._stopping:
            return
        if self._lock.locked():
            self._again = True
            return
        task = asyncio.get_running_loop().create_task(self._run_guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def tick(self) -> None:
        """The scheduler's tick: start a pass, or have the one under way go round again.
        It returns at once, so a long pass under load never makes APScheduler skip the
        next tick (and log a warning for each one skipped)."""
        self.wake()

    async def _run_guarded(self) -> None:
        try:
            await self.dispatch_due()
        except Exception:  # a failing tick must not kill the loop; the next tick retries
            log.exception("outbox dispatch failed")

    async def dispatch_due(self) -> int:
        """One pass (plus follow-ups requested meanwhile); returns messages delivered."""
        delivered = 0
        async with self._lock:
            while not self._stopping:
                self._again = False
                claimed_at = self._clock.now()
                count, more = await self._pass(claimed_at)
                delivered += count
                while self._deferred and self._deferred[0] <= claimed_at:
                    heapq.heappop(self._deferred)  # that pass saw these rows due
                # A row put back to a moment that passed while this pass ran: no alarm
                # can be set in the past, so go again now.
                came_due = bool(self._deferred) and self._deferred[0] <= self._clock.now()
                if not (more or self._again or came_due):
                    break
            if not self._stopping:
                self._arm()
        return delivered

    def _arm(self) -> None:
        """A row paced or retried to a moment before the next tick: wake up then, so a
        paced channel gets its ~1 msg/s rather than one message per tick and a bit."""
        now = self._clock.now()
        while self._deferred and self._deferred[0] <= now:
            heapq.heappop(self._deferred)
        if self._deferred:
            self._alarm.set_in((self._deferred[0] - now).total_seconds())

    async def _defer(self, row_id: int, *, due_at: datetime, error: str) -> None:
        await self._store.retry_at(row_id, due_at=due_at, error=error)
        heapq.heappush(self._deferred, due_at)

    def stop(self) -> None:
        """Shutdown: no more wake-ups or passes; deliveries under way finish, and rows
        claimed but not started are released, so `drain()` returns within one delivery."""
        self._stopping = True
        self._alarm.cancel()

    async def _pass(self, now: datetime) -> tuple[int, bool]:
        """Deliver a claimed batch: one lane per channel (in order within it), lanes in
        parallel, so a slow or paced channel holds up nothing else."""
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
            for index, row in enumerate(rows):
                if self._stopping:
                    # Shutting down: what this pass has not started goes back to the
                    # queue at once, for another replica or the next start.
                    await self._store.release(rows[index:])
                    return
                if self._ack_first is not None:
                    await self._ack_first.wait_quiet()
                if not self._lease_covers_a_send(row):
                    # A long lane or a stalled process: the lease could run out mid-send,
                    # and a replica taking the row over would not see this send coming.
                    log.warning("outbox %s: lease too short to send, put back", row.id)
                    await self._store.release(rows[index:])
                    return
                free_at = await self._slot(row.channel) if row.channel else None
                if free_at is not None:
                    await self._defer_paced(rows[index:], free_at)
                    return
                if await self._deliver_one(row):
                    assert row.id is not None
                    sent.append((row.id, self._clock.now()))

    async def _defer_paced(self, rows: list[OutboxRow], free_at: datetime) -> None:
        """The channel is busy: the rest of the lane waits, one pace apart from when it
        frees up, in one statement. Were they all due at `free_at`, every pass would
        claim and put back the whole queue of a busy channel to send one message."""
        pace = max(self._pace, timedelta(0))
        due = [(row, free_at + i * pace) for i, row in enumerate(rows)]
        await self._store.defer_paced(due)
        for _, at in due:
            heapq.heappush(self._deferred, at)

    def _lease_covers_a_send(self, row: OutboxRow) -> bool:
        return row.lease_until is None or self._clock.now() + self._send_budget <= row.lease_until

    async def _deliver_one(self, row: OutboxRow) -> int:
        assert row.id is not None
        key = row.channel
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
            log.info(
                "outbox %s %s for %s: retry in %.1fs (%s)",
                row.id,
                row.kind,
                row.change_id or "-",
                wait,
                outcome.error,
            )
            await self._defer(row.id, due_at=due, error=outcome.error)
            return 0
        log.error(
            "outbox %s %s for %s undeliverable: %s", row.id, row.kind, row.change_id or "-", outcome.error
        )
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
        # Others that act when a change moved (deployments waiting at its gate).
        self.also: list[Callable[[], None]] = []

    def wake(self) -> None:
        if self.target is not None:
            self.target.wake()
        for wake in self.also:
            wake()
