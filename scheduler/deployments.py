"""The deployments waiting at a change's gate: a pass every tick (quiet: nothing is
logged per tick) and at once when a change moves or a request arrives. Like the notice
ticker, a wake starts the pass in the background and a pass under way goes round again."""

from __future__ import annotations

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.usecases.deployments import DeploymentGates

log = logging.getLogger(__name__)

DEPLOYMENTS_JOB = "deployment_gates"
TICK_SECONDS = 20.0


class DeploymentTicker:
    def __init__(self, *, gates: DeploymentGates) -> None:
        self.gates = gates
        self._lock = asyncio.Lock()
        self._again = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    def wake(self) -> None:
        """A change moved or a request arrived: answer what can be answered, soon."""
        if self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a CLI command): the next serving replica's tick answers
            return
        task = loop.create_task(self._guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def tick(self) -> None:
        """One pass (and again, if woken meanwhile)."""
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            while True:
                self._again = False
                await self.gates.answer_pending()
                if not self._again:
                    return

    async def scheduled(self) -> None:
        """The scheduler's job: in the background, so a slow GitHub never delays the tick."""
        self.wake()

    @property
    def idle(self) -> bool:
        """No pass under way or asked for."""
        return not self._tasks

    def stop(self) -> None:
        self._stopped = True

    async def drain(self) -> None:
        """Wait for the passes under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _guarded(self) -> None:
        try:
            await self.tick()
        except Exception:  # the next tick retries
            log.exception("answering deployments waiting at the gate failed")


def add_deployment_job(
    scheduler: AsyncIOScheduler, ticker: DeploymentTicker, *, seconds: float = TICK_SECONDS
) -> None:
    scheduler.add_job(
        ticker.scheduled,
        "interval",
        seconds=seconds,
        id=DEPLOYMENTS_JOB,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
