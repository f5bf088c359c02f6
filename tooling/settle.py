"""Running the bot's outbox to rest on a fake clock: what the demo and the tests do after
every request, instead of waiting for the scheduler's ticks."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from bot.outbox import OutboxDispatcher
from storage.outbox import OutboxStore


class SettableClock(Protocol):
    """A fake clock the caller may move on (the tests' FakeClock, the demo's clock)."""

    def now(self) -> datetime: ...

    def set(self, moment: datetime) -> None: ...


async def drain_bolt() -> None:
    """Bolt runs listeners after the ack in background tasks; wait for them."""
    current = asyncio.current_task()
    for _ in range(500):
        pending = [
            task
            for task in asyncio.all_tasks()
            if task is not current and not task.done() and "listener" in repr(task.get_coro()).lower()
        ]
        if not pending:
            return
        await asyncio.wait(pending, timeout=0.05)


async def settle_outbox(
    *, dispatcher: OutboxDispatcher, store: OutboxStore, clock: SettableClock, max_rounds: int
) -> bool:
    """Let the listeners finish and deliver every due outbox row; False if rows remain
    after `max_rounds`. The dispatcher paces each channel to one message a second by the
    bot's clock, so when only paced or backed-off rows remain the clock moves on to the
    next one."""
    for _ in range(max_rounds):
        await asyncio.sleep(0)
        await drain_bolt()
        await dispatcher.drain()
        delivered = await dispatcher.dispatch_due()
        counts = await store.counts()
        if not counts.get("pending") and not counts.get("sending"):
            await drain_bolt()
            if not (await store.counts()).get("pending"):
                return True
            continue
        if delivered == 0:
            next_due = await store.next_due(after=clock.now())
            if next_due is not None:
                clock.set(next_due)
    return False
