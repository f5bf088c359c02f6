"""The due-notices tick wakes between ticks at the moment the next notice comes due."""

from __future__ import annotations

import asyncio
import inspect
import time

from scheduler.jobs import NoticeTicker
from tests.support.harness import Harness


class FakeTimeline:
    """Stands in for the service: one notice due `due_in` seconds after the first pass."""

    def __init__(self, due_in: float) -> None:
        self.due_in = due_in
        self.passes: list[float] = []

    async def process_due_notices(self, *, limit: int = 100) -> int:
        self.passes.append(time.monotonic())
        return 0

    async def seconds_to_next_notice(self) -> float | None:
        if len(self.passes) > 1:
            return None  # the notice went out
        return self.due_in


async def test_a_notice_due_before_the_next_tick_is_claimed_on_time() -> None:
    timeline = FakeTimeline(due_in=0.2)
    ticker = NoticeTicker(service=timeline, tick_seconds=1.0, running=lambda: True)  # type: ignore[arg-type]
    await ticker.tick()
    await asyncio.sleep(0.5)
    assert len(timeline.passes) == 2
    woke_after = timeline.passes[1] - timeline.passes[0]
    assert 0.2 <= woke_after < 0.35


async def test_no_wake_up_when_the_next_notice_is_a_tick_or_more_away() -> None:
    timeline = FakeTimeline(due_in=5.0)
    ticker = NoticeTicker(service=timeline, tick_seconds=1.0, running=lambda: True)  # type: ignore[arg-type]
    await ticker.tick()
    await asyncio.sleep(0.1)
    assert len(timeline.passes) == 1


async def test_a_stopped_scheduler_does_not_wake() -> None:
    timeline = FakeTimeline(due_in=0.05)
    ticker = NoticeTicker(service=timeline, tick_seconds=1.0, running=lambda: False)  # type: ignore[arg-type]
    await ticker.tick()
    await asyncio.sleep(0.2)
    assert len(timeline.passes) == 1


async def test_every_scheduled_job_runs_on_the_event_loop(harness: Harness) -> None:
    """APScheduler sends anything that is not a coroutine function to a thread, where an
    async callable object would silently never run."""
    jobs = harness.bot.scheduler.get_jobs()
    assert jobs
    assert all(inspect.iscoroutinefunction(job.func) for job in jobs), [job.name for job in jobs]


class SlowTimeline(FakeTimeline):
    """A pass that takes longer than a tick, as under load."""

    async def process_due_notices(self, *, limit: int = 100) -> int:
        self.passes.append(time.monotonic())
        await asyncio.sleep(0.3)
        return 0


async def test_the_scheduler_s_tick_returns_at_once_and_a_slow_pass_goes_round_again() -> None:
    """APScheduler skips (and warns about) a tick whose previous run has not returned."""
    timeline = SlowTimeline(due_in=5.0)
    ticker = NoticeTicker(service=timeline, tick_seconds=1.0, running=lambda: True)  # type: ignore[arg-type]
    await asyncio.wait_for(ticker.wake(), 0.05)
    await asyncio.sleep(0.05)
    assert len(timeline.passes) == 1  # the pass runs in the background
    await asyncio.wait_for(ticker.wake(), 0.05)  # a tick during the pass
    await asyncio.sleep(0.7)
    assert len(timeline.passes) == 2  # ...makes it go round once more, not start a second


async def test_a_stopped_ticker_lets_its_pass_finish_and_starts_no_other() -> None:
    timeline = SlowTimeline(due_in=0.05)
    ticker = NoticeTicker(service=timeline, tick_seconds=1.0, running=lambda: True)  # type: ignore[arg-type]
    await ticker.wake()
    await asyncio.sleep(0.05)
    ticker.stop()
    await asyncio.wait_for(ticker.drain(), 1.0)  # the pass under way finished
    await ticker.wake()
    await asyncio.sleep(0.4)  # nor a tick, nor the alarm for the notice due in 0.05 s
    assert len(timeline.passes) == 1
