"""The start-up catch-up of the scheduled posts (digest, CAB agenda, monthly report): a post
whose time passed while the bot was down is posted late, but a new database missed nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain import journal


class JobRuns(Protocol):
    async def record_first_job_run(self, *, job: str, period: str, now: datetime) -> bool: ...


async def baseline(repo: JobRuns, *, job: str, due: str | None, now: datetime) -> bool:
    """True (post nothing) if `job` never ran on this database. The period due now is recorded
    as done; between periods a marker of this start is, so the next period is still posted and
    a later restart after a real miss is no longer a first start."""
    period = due or f"first start {now:%Y-%m-%dT%H:%M:%S}"
    if not await repo.record_first_job_run(job=job, period=period, now=now):
        return False
    if due:
        journal.job_baseline(job, due)
    return True
