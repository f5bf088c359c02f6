"""The outbox/gateway: persisted, retried with Retry-After, paced per channel, never
lost, never sent twice."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import sqlalchemy as sa

from bot.outbox import backoff_seconds
from domain.intents import Intent, IntentKind
from domain.messages import Text
from storage.database import session_factory
from storage.models import CardCopyRow, OutboxRow
from tests.support.harness import Harness


async def rows(harness: Harness) -> list[OutboxRow]:
    async with session_factory(harness.bot.engine)() as session:
        return list((await session.execute(sa.select(OutboxRow).order_by(OutboxRow.id))).scalars().all())


async def enqueue_messages(harness: Harness, count: int, channel: str = "CBUSY") -> None:
    store = harness.bot.context.dispatcher._store
    await store.add(
        [Intent(IntentKind.MESSAGE, None, channel, Text(text=f"message {i}")) for i in range(count)],
        now=harness.clock.now(),
    )


async def test_messages_to_one_channel_are_paced_one_per_second(harness: Harness) -> None:
    await enqueue_messages(harness, 5)
    dispatcher = harness.bot.context.dispatcher
    assert await dispatcher.dispatch_due() == 1
    assert await dispatcher.dispatch_due() == 0  # same second: held back, not dropped
    for expected in (2, 3, 4, 5):
        harness.clock.advance(timedelta(seconds=1))
        await dispatcher.dispatch_due()
        assert len(harness.slack.calls_to("chat.postMessage")) == expected
    texts = [c.params["text"] for c in harness.slack.calls_to("chat.postMessage")]
    assert texts == [f"message {i}" for i in range(5)]


async def test_other_channels_are_not_held_back_by_a_busy_one(harness: Harness) -> None:
    await enqueue_messages(harness, 3, channel="CBUSY")
    await enqueue_messages(harness, 1, channel="CQUIET")
    await harness.bot.context.dispatcher.dispatch_due()
    assert {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")} == {"CBUSY", "CQUIET"}


async def test_rate_limit_honours_retry_after_and_delivers(harness: Harness) -> None:
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=7, times=1)
    await enqueue_messages(harness, 1)
    dispatcher = harness.bot.context.dispatcher
    await dispatcher.dispatch_due()
    [row] = await rows(harness)
    assert row.state == "pending" and row.due_at == harness.clock.now() + timedelta(seconds=7)
    assert "429" in (row.last_error or "")
    harness.clock.advance(timedelta(seconds=6))
    await dispatcher.dispatch_due()
    assert not harness.slack.calls_to("chat.postMessage")
    harness.clock.advance(timedelta(seconds=1))
    await dispatcher.dispatch_due()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert (await rows(harness))[0].state == "sent"


async def test_bursts_of_429_and_500_lose_nothing_and_duplicate_nothing(harness: Harness) -> None:
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=2, times=6)
    harness.slack.fail_next("chat.postMessage", status=500, times=4)
    await enqueue_messages(harness, 20)
    await harness.settle(max_rounds=500)
    texts = [c.params["text"] for c in harness.slack.calls_to("chat.postMessage")]
    assert sorted(texts) == sorted(f"message {i}" for i in range(20))
    assert len(texts) == len(set(texts))
    assert {r.state for r in await rows(harness)} == {"sent"}


async def test_server_errors_back_off_exponentially(harness: Harness) -> None:
    for attempt, (low, high) in {1: (0.5, 1), 2: (1, 2), 3: (2, 4), 12: (150, 300), 40: (150, 300)}.items():
        assert low <= backoff_seconds(attempt) <= high
    harness.slack.fail_next("chat.postMessage", status=500, times=3)
    started = harness.clock.now()
    await enqueue_messages(harness, 1)
    await harness.settle()
    assert len(harness.slack.failed_calls) == 3
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert harness.clock.now() - started >= timedelta(seconds=3.5)  # 0.5+ then 1+ then 2+ seconds


async def test_permanent_errors_are_kept_as_dead_letters(harness: Harness) -> None:
    store = harness.bot.context.dispatcher._store
    await store.add([Intent(IntentKind.MESSAGE, None, "UNOBODY", Text(text="hi"))], now=harness.clock.now())
    harness.slack.fail_next("chat.postMessage", status=200, error="channel_not_found", times=1)
    await harness.bot.context.dispatcher.dispatch_due()
    [row] = await rows(harness)
    assert row.state == "dead" and "channel_not_found" in (row.last_error or "")


async def test_not_in_channel_joins_and_retries(harness: Harness) -> None:
    harness.slack.not_member_of.add("CPRIVATEISH")
    await enqueue_messages(harness, 1, channel="CPRIVATEISH")
    await harness.settle()
    assert harness.slack.calls_to("conversations.join")
    assert [m["text"] for m in harness.slack.messages("CPRIVATEISH")] == ["message 0"]


async def test_a_crashed_sender_s_row_is_picked_up_after_its_lease(harness: Harness) -> None:
    await enqueue_messages(harness, 1)
    store = harness.bot.context.dispatcher._store
    claimed = await store.claim_due(now=harness.clock.now(), limit=10, lease=timedelta(seconds=60))
    assert len(claimed) == 1  # a replica claimed it, then died before sending
    assert await harness.bot.context.dispatcher.dispatch_due() == 0  # leased: nobody else takes it
    harness.clock.advance(timedelta(seconds=61))
    assert await harness.bot.context.dispatcher.dispatch_due() == 1
    assert len(harness.slack.calls_to("chat.postMessage")) == 1


async def test_two_dispatchers_never_claim_the_same_row(harness: Harness) -> None:
    await enqueue_messages(harness, 30, channel="C1")
    store = harness.bot.context.dispatcher._store
    import asyncio

    first, second = await asyncio.gather(
        store.claim_due(now=harness.clock.now(), limit=20, lease=timedelta(seconds=60)),
        store.claim_due(now=harness.clock.now(), limit=20, lease=timedelta(seconds=60)),
    )
    ids_first = {r.id for r in first}
    ids_second = {r.id for r in second}
    assert not ids_first & ids_second
    assert len(ids_first | ids_second) == 30


async def test_a_card_redelivered_after_a_crash_is_not_posted_twice(harness: Harness) -> None:
    await harness.file_change()
    posts = len(harness.slack.calls_to("chat.postMessage"))
    store = harness.bot.context.dispatcher._store
    await store.add([Intent(IntentKind.POST_CARD, "CR-2026-0001", "CCHANGES")], now=harness.clock.now())
    await harness.settle()
    assert len(harness.slack.calls_to("chat.postMessage")) == posts


async def test_rows_of_one_change_go_out_in_order(harness: Harness) -> None:
    harness.slack.fail_next("chat.postMessage", status=500, times=1)  # the channel card fails first
    await harness.file_change()
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    methods = [c.method for c in harness.slack.calls if c.method in ("chat.postMessage", "chat.update")]
    first_update = methods.index("chat.update")
    assert "chat.postMessage" in methods[:first_update]
    channel_card = [
        c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "CCHANGES"
    ]
    assert len(channel_card) == 1
    assert any(c.params["channel"] == "CCHANGES" for c in harness.slack.calls_to("chat.update"))


async def test_a_message_that_reached_slack_before_the_crash_is_not_sent_again(harness: Harness) -> None:
    await enqueue_messages(harness, 1, channel="UREQ")
    store = harness.bot.context.dispatcher._store
    [row] = await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=60))
    await harness.bot.context.gateway.deliver(row)  # Slack got it; the process died before marking it
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    harness.clock.advance(timedelta(seconds=61))
    await harness.bot.context.dispatcher.dispatch_due()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert harness.slack.calls_to("conversations.history")
    assert (await rows(harness))[0].state == "sent"


async def test_a_taken_over_message_that_is_paced_first_is_still_checked_not_resent(harness: Harness) -> None:
    """The take-over is remembered across a deferral: after waiting for the channel's
    pace, the row is still checked against the history before anything is posted."""
    await enqueue_messages(harness, 1, channel="UREQ")
    store = harness.bot.context.dispatcher._store
    [row] = await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=60))
    await harness.bot.context.gateway.deliver(row)  # Slack got it; the process died before marking it
    harness.clock.advance(timedelta(seconds=61))
    # Another replica just posted there: the channel's next slot is 5 s away.
    assert await store.reserve_slot("UREQ", now=harness.clock.now(), pace=timedelta(seconds=5)) is None
    await harness.bot.context.dispatcher.dispatch_due()
    assert (await rows(harness))[0].state == "pending"  # paced, not sent
    harness.clock.advance(timedelta(seconds=6))
    await harness.bot.context.dispatcher.dispatch_due()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert (await rows(harness))[0].state == "sent"


async def test_a_history_check_that_fails_is_retried_rather_than_posting_blind(harness: Harness) -> None:
    await enqueue_messages(harness, 1, channel="UREQ")
    store = harness.bot.context.dispatcher._store
    [row] = await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=60))
    await harness.bot.context.gateway.deliver(row)
    harness.clock.advance(timedelta(seconds=61))
    harness.slack.fail_next("conversations.history", status=500, times=1)
    await harness.bot.context.dispatcher.dispatch_due()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert (await rows(harness))[0].state == "pending"
    await harness.settle()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert (await rows(harness))[0].state == "sent"


async def test_a_card_that_reached_slack_before_the_crash_is_remembered_not_reposted(
    harness: Harness,
) -> None:
    await harness.file_change()
    store = harness.bot.context.dispatcher._store
    await store.add([Intent(IntentKind.POST_CARD, "CR-2026-0001", "COTHER")], now=harness.clock.now())
    [card] = await store.claim_due(now=harness.clock.now(), limit=10, lease=timedelta(seconds=60))
    await harness.bot.context.gateway.deliver(card)  # reached Slack; died before recording the copy
    async with session_factory(harness.bot.engine)() as session, session.begin():
        await session.execute(sa.delete(CardCopyRow).where(CardCopyRow.channel == "COTHER"))
    harness.clock.advance(timedelta(seconds=61))
    await harness.settle()
    assert (
        len([c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "COTHER"]) == 1
    )
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    assert any(c.params["channel"] == "COTHER" for c in harness.slack.calls_to("chat.update"))


async def test_a_crash_before_slack_got_it_is_sent_after_the_lease(harness: Harness) -> None:
    await enqueue_messages(harness, 1, channel="UREQ")
    store = harness.bot.context.dispatcher._store
    await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=60))
    harness.clock.advance(timedelta(seconds=61))
    await harness.bot.context.dispatcher.dispatch_due()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1


async def test_a_paced_channel_is_served_at_its_pace_not_at_the_tick(harness: Harness) -> None:
    """Between ticks the dispatcher wakes when the channel's next slot opens."""
    import asyncio

    from bot.outbox import OutboxDispatcher
    from domain.clock import SystemClock

    dispatcher = OutboxDispatcher(
        store=harness.bot.context.dispatcher._store,
        gateway=harness.bot.context.gateway,
        clock=SystemClock(),
        pace=timedelta(seconds=0.2),
        tick=timedelta(seconds=10),  # no tick will come: only the timed wake-ups deliver
    )
    await harness.bot.context.dispatcher._store.add(
        [Intent(IntentKind.MESSAGE, None, "CPACED", Text(text=f"message {i}")) for i in range(4)],
        now=SystemClock().now(),
    )
    await dispatcher.dispatch_due()
    for _ in range(40):
        if len(harness.slack.calls_to("chat.postMessage")) == 4:
            break
        await asyncio.sleep(0.05)
    dispatcher.stop()
    await dispatcher.drain()
    calls = harness.slack.calls_to("chat.postMessage")
    assert [c.params["text"] for c in calls] == [f"message {i}" for i in range(4)]
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(0.19 <= gap < 0.6 for gap in gaps), gaps


async def test_a_busy_channel_s_queue_is_put_back_one_pace_apart_not_reclaimed_every_pass(
    harness: Harness,
) -> None:
    await enqueue_messages(harness, 5)
    start = harness.clock.now()
    assert await harness.bot.context.dispatcher.dispatch_due() == 1
    waiting = [r for r in await rows(harness) if r.state == "pending"]
    assert [r.due_at for r in waiting] == [start + timedelta(seconds=s) for s in (1, 2, 3, 4)]
    assert all(r.attempts == 0 and r.lease_until is None for r in waiting)  # waiting is not failing
    claimed = await harness.bot.context.dispatcher._store.claim_due(
        now=start + timedelta(seconds=1), limit=50, lease=timedelta(seconds=30)
    )
    assert [r.id for r in claimed] == [waiting[0].id]  # one row a second comes due, in order


async def test_stopping_releases_what_a_pass_has_not_started_and_another_sender_delivers_it(
    harness: Harness,
) -> None:
    """Shutdown waits for the deliveries under way, not for the whole claimed batch."""
    from bot.outbox import OutboxDispatcher

    store = harness.bot.context.dispatcher._store
    await store.add(
        [Intent(IntentKind.MESSAGE, None, f"C{i}", Text(text=f"message {i}")) for i in range(12)],
        now=harness.clock.now(),
    )
    harness.slack.delay("chat.postMessage", 0.3)
    sender = OutboxDispatcher(
        store=store, gateway=harness.bot.context.gateway, clock=harness.clock, lanes=2, pace=timedelta(0)
    )
    passing = asyncio.create_task(sender.dispatch_due())
    while "chat.postMessage" not in harness.slack.arrivals:
        await asyncio.sleep(0.01)
    stopped_at = asyncio.get_running_loop().time()
    sender.stop()
    assert 1 <= await passing <= 2  # each lane finishes the message under way, then gives up
    assert asyncio.get_running_loop().time() - stopped_at < 1.0
    sender.wake()  # a stopped sender ignores wake-ups
    await sender.drain()
    left = [r for r in await rows(harness) if r.state != "sent"]
    assert len(left) >= 10
    assert all(r.state == "pending" and r.attempts == 0 and r.lease_until is None for r in left)
    harness.slack.delay("chat.postMessage", 0)
    await harness.settle()
    texts = [c.params["text"] for c in harness.slack.calls_to("chat.postMessage")]
    assert sorted(texts) == sorted(f"message {i}" for i in range(12))  # each exactly once


async def test_a_lane_outliving_its_lease_puts_the_rest_back_instead_of_racing_a_take_over(
    harness: Harness,
) -> None:
    """Slack slow enough that a lane's lease would run out mid-send: what is left goes back
    to the queue, to be sent once by whoever claims it next."""
    from bot.outbox import OutboxDispatcher

    store = harness.bot.context.dispatcher._store
    await enqueue_messages(harness, 4, channel="CSLOW")
    sender = OutboxDispatcher(
        store=store, gateway=harness.bot.context.gateway, clock=harness.clock, pace=timedelta(0)
    )
    harness.slack.delay("chat.postMessage", 0.3)
    passing = asyncio.create_task(sender.dispatch_due())
    while "chat.postMessage" not in harness.slack.arrivals:
        await asyncio.sleep(0.01)
    harness.clock.advance(timedelta(seconds=25))  # the first send took most of the 30 s lease
    assert await passing == 1
    left = [r for r in await rows(harness) if r.state != "sent"]
    assert [r.state for r in left] == ["pending"] * 3
    assert all(r.attempts == 0 and r.lease_until is None and not r.recovered for r in left)
    harness.slack.delay("chat.postMessage", 0)
    await harness.settle()
    texts = [c.params["text"] for c in harness.slack.calls_to("chat.postMessage")]
    assert texts == [f"message {i}" for i in range(4)]


async def test_a_sender_whose_lease_ran_out_leaves_a_taken_over_row_alone(harness: Harness) -> None:
    await enqueue_messages(harness, 1)
    store = harness.bot.context.dispatcher._store
    [mine] = await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=30))
    harness.clock.advance(timedelta(seconds=31))
    [theirs] = await store.claim_due(now=harness.clock.now(), limit=1, lease=timedelta(seconds=30))
    await store.release([mine])  # the stalled first sender wakes and gives its row back
    [row] = await rows(harness)
    assert row.state == "sending" and row.lease_until == theirs.lease_until


async def test_the_scheduler_tick_returns_at_once_while_a_pass_is_under_way(harness: Harness) -> None:
    """A long pass must not make APScheduler skip ticks; the tick asks the pass to go round
    again, and what it found is delivered."""
    dispatcher = harness.bot.context.dispatcher
    harness.slack.delay("chat.postMessage", 0.5)
    await enqueue_messages(harness, 1, channel="CSLOW")
    passing = asyncio.create_task(dispatcher.dispatch_due())
    await asyncio.sleep(0.1)  # the pass is sending, slowly
    await enqueue_messages(harness, 1, channel="CLATER")
    await asyncio.wait_for(dispatcher.tick(), 0.05)
    assert not passing.done()
    await passing
    await dispatcher.drain()
    assert {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")} == {"CSLOW", "CLATER"}
