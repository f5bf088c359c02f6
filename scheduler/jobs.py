"""APScheduler 3 in the bot's own event loop. Jobs only tick: the work (claiming due
rows, delivering them) lives in the use cases and the dispatcher, so a replica can die
mid-tick safely. Memory job store only: sharing a job store between processes double-fires."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.outbox import OutboxDispatcher
from domain.policy import Policy
from domain.service import ChangeService

log = logging.getLogger(__name__)

DISPATCH_JOB = "dispatch_outbox"
NOTICES_JOB = "due_notices"
DIGEST_JOB = "daily_digest"
CAB_JOB = "cab_agenda"
REPORT_JOB = "monthly_report"


def digest_trigger(policy: Policy) -> CronTrigger:
    """The policy's local time every day; APScheduler handles the DST shifts."""
    return CronTrigger(hour=policy.digest.hour, minute=policy.digest.minute, timezone=policy.timezone)


def build_scheduler(
    *, dispatcher: OutboxDispatcher, service: ChangeService, policy: Policy, tick_seconds: float = 1.0
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    tick = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}

    async def notices_tick() -> None:
        while await service.process_due_notices() >= 100:
            pass

    scheduler.add_job(notices_tick, "interval", seconds=tick_seconds, id=NOTICES_JOB, **tick)
    scheduler.add_job(dispatcher.dispatch_due, "interval", seconds=tick_seconds, id=DISPATCH_JOB, **tick)
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
    return scheduler
