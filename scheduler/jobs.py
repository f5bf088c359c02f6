"""APScheduler 3 in the bot's own event loop. Jobs only tick: the work (claiming due
rows, delivering them) lives in the use cases and the dispatcher, so a replica can die
mid-tick safely. Memory job store only: sharing a job store between processes double-fires."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from domain.policy import Policy
from domain.service import ChangeService
from scheduler.alarm import Alarm

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """What the scheduler needs of the outbox dispatcher (bot/ wires it in): its tick."""

    async def tick(self) -> None: ...


DISPATCH_JOB = "dispatch_outbox"
NOTICES_JOB = "due_notices"
DIGEST_JOB = "daily_digest"
CAB_JOB = "cab_agenda"
REPORT_JOB = "monthly_report"
WEEKLY_REPORT_JOB = "weekly_report"
FREEZE_JOB = "freeze_ends"
FREEZE_TICK_SECONDS = 15  # a freeze stops holding changes at its end; this is when it is announced


def digest_trigger(policy: Policy) -> CronTrigger:
    """The policy's local time every day; APScheduler handles the DST shifts."""
    return CronTrigger(hour=policy.digest.hour, minute=policy.digest.minute, timezone=policy.timezone)


class NoticeTicker:
    """The due-notices tick. Between ticks it also wakes at the moment the next notice
    comes due, so a notice reaches the outbox on time instead of up to a tick late."""

    def __init__(self, *, service: ChangeService, tick_seconds: float, running: Callable[[], bool]) -> None:
        self._service = service
        self._running = running
        self._lock = asyncio.Lock()
        self._again = False
        self._alarm = Alarm(self._fire, horizon=tick_seconds)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def wake(self) -> None:
        """The scheduler's tick: start a pass in the background and return at once, so a
        pass slowed by load never makes APScheduler skip the next tick (and warn). If a
        pass is under way, `tick` has it go round once more."""
        self._fire()

    async def tick(self) -> None:
        """One pass over the due notices (and again, if asked meanwhile)."""
        if self._lock.locked():
            self._again = True  # the pass under way goes round once more
            return
        async with self._lock:
            while True:
                self._again = False
                while await self._service.process_due_notices() >= 100:
                    pass
                if not self._again:
                    break
            await self._arm()

    async def _arm(self) -> None:
        self._alarm.set_in(await self._service.seconds_to_next_notice())

    def stop(self) -> None:
        """Shutdown: no more wake-ups; `drain()` waits for a pass under way."""
        self._stopped = True
        self._alarm.cancel()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _fire(self) -> None:
        if self._stopped or not self._running():
            return
        task = asyncio.get_running_loop().create_task(self._guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self) -> None:
        try:
            await self.tick()
        except Exception:  # the next tick retries
            log.exception("due-notice wake-up failed")


def build_scheduler(
    *, dispatcher: Dispatcher, service: ChangeService, policy: Policy, tick_seconds: float = 1.0
) -> tuple[AsyncIOScheduler, NoticeTicker]:
    """The scheduler, and the notice ticker whose passes a shutdown waits for."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    tick = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}

    notices = NoticeTicker(service=service, tick_seconds=tick_seconds, running=lambda: scheduler.running)
    # A bound coroutine method: APScheduler runs it on the loop (a callable object it
    # would hand to a thread, and the coroutine would never run).
    scheduler.add_job(notices.wake, "interval", seconds=tick_seconds, id=NOTICES_JOB, **tick)
    scheduler.add_job(dispatcher.tick, "interval", seconds=tick_seconds, id=DISPATCH_JOB, **tick)
    freeze_tick = max(tick_seconds, FREEZE_TICK_SECONDS)
    scheduler.add_job(service.end_due_freezes, "interval", seconds=freeze_tick, id=FREEZE_JOB, **tick)
    if policy.digest.enabled:
        scheduler.add_job(service.run_digest, digest_trigger(policy), id=DIGEST_JOB, **tick)
    if policy.cab.enabled:
        cab = CronTrigger(
            day_of_week=policy.cab.day,
            hour=int(policy.cab.at[:2]),
            minute=int(policy.cab.at[3:]),
            timezone=policy.cab.timezone,
        )
        scheduler.add_job(service.run_cab_agenda, cab, id=CAB_JOB, **tick)
    if policy.report.monthly:
        monthly = CronTrigger(
            day=policy.report.day,
            hour=int(policy.report.at[:2]),
            minute=int(policy.report.at[3:]),
            timezone=policy.timezone,
        )
        scheduler.add_job(service.run_monthly_report, monthly, id=REPORT_JOB, **tick)
    weekly = policy.report.weekly
    if weekly is not None:
        trigger = CronTrigger(
            day_of_week=weekly.day,
            hour=int(weekly.at[:2]),
            minute=int(weekly.at[3:]),
            timezone=policy.timezone,
        )
        scheduler.add_job(service.run_weekly_report, trigger, id=WEEKLY_REPORT_JOB, **tick)
    return scheduler, notices
