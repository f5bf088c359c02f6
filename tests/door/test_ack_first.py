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


async def test_while_busy_one_held_back_delivery_goes_per_max_hold_in_all() -> None:
    """Eight delivery lanes must not take eight turns: the acks keep the loop."""
    priority = AckFirst(max_hold=0.1)
    went: list[float] = []

    async def lane() -> None:
        await priority.wait_quiet()
        went.append(time.monotonic())

    with priority.request():
        started = time.monotonic()
        lanes = [asyncio.create_task(lane()) for _ in range(8)]
        await asyncio.sleep(0.35)
        assert 2 <= len(went) <= 4
        assert all(b - a >= 0.09 for a, b in zip([started, *went], went, strict=False))
    await asyncio.gather(*lanes)  # quiet again: the rest go at once
    assert len(went) == 8
