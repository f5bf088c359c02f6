"""While Slack requests are in flight the outbox holds back, but never for long."""

from __future__ import annotations

import asyncio
import time

from bot.priority import AckFirst


async def test_idle_door_holds_nothing_back() -> None:
    started = time.monotonic()
    await AckFirst(max_hold=5).wait_quiet()
    assert time.monotonic() - started < 0.05


async def test_delivery_waits_until_the_last_request_is_answered() -> None:
    priority = AckFirst(max_hold=5)
    order: list[str] = []

    async def request() -> None:
        with priority.request():
            await asyncio.sleep(0.1)
            order.append("acked")

    async def delivery() -> None:
        await asyncio.sleep(0.01)
        await priority.wait_quiet()
        order.append("delivered")

    await asyncio.gather(request(), delivery())
    assert order == ["acked", "delivered"]


async def test_a_busy_door_holds_delivery_back_at_most_max_hold() -> None:
    priority = AckFirst(max_hold=0.1)
    with priority.request():
        started = time.monotonic()
        await priority.wait_quiet()
        assert 0.09 <= time.monotonic() - started < 0.5
