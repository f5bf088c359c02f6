"""APScheduler 3 in the bot's own event loop. Jobs only tick: the work (claiming due
rows, delivering them) lives in the dispatcher, so a replica can die mid-tick safely.
Memory job store only: sharing a job store between processes double-fires."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.outbox import OutboxDispatcher

DISPATCH_JOB = "dispatch_outbox"


def build_scheduler(*, dispatcher: OutboxDispatcher, tick_seconds: float = 1.0) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        dispatcher.dispatch_due,
        "interval",
        seconds=tick_seconds,
        id=DISPATCH_JOB,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    return scheduler
