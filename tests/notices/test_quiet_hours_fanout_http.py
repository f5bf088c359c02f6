"""Quiet hours for the chases fanned out to several people (approval reminders and
deadlines, the post-approval chase, escalations): each reader in quiet hours gets it at their
morning, in their own Slack time zone, once; the others, and an emergency's readers, at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage.database import session_factory
from storage.outbox import OutboxStore
from tests.support.flows import declare
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

LONDON = ZoneInfo("Europe/London")
EVENING = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # filed at 23:00: the reminder falls at 03:00


def rendered(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return params["text"] + " " + json.dumps(params.get("blocks") or [])


def reminders(harness: Harness, user: str, needle: str) -> list[str]:
    return [rendered(c) for c in harness.posts_to(user) if needle in rendered(c)]


@pytest.fixture
def policy_text() -> str:
    return TEST_POLICY + 'quiet_hours: {start: "20:00", end: "08:00", unless_within: 2h}\n'


async def test_an_approval_reminder_at_night_waits_for_each_approvers_morning(harness: Harness) -> None:
    harness.slack.users["ULEAD1"] = {"tz": "Europe/London"}
    harness.slack.users["ULEAD2"] = {"tz": "Asia/Tokyo"}  # 03:00 in London is noon in Tokyo
    harness.clock.set(EVENING)
    await harness.file_change()  # medium risk: due in 8 h, reminded half way, at 03:00
    await harness.settle()
    assert len(harness.posts_to("ULEAD1")) == 1  # the first request (the card) is no reminder

    harness.clock.set(EVENING + timedelta(hours=4))
    await harness.bot.context.service.process_due_notices()
    for _ in range(3):  # the fan-out, then each approver's own row
        await harness.bot.context.dispatcher.dispatch_due()
    assert len(reminders(harness, "ULEAD2", "Reminder")) == 1  # daytime in Tokyo: at once
    assert reminders(harness, "ULEAD1", "Reminder") == []  # London sleeps

    await harness.settle()  # nothing else is due: the clock moves on to the held reminder
    assert harness.clock.now() == datetime(2026, 11, 24, 8, 0, tzinfo=LONDON)
    assert len(reminders(harness, "ULEAD1", "Reminder")) == 1
    await harness.tick()
    assert len(reminders(harness, "ULEAD1", "Reminder")) == 1
    assert len(reminders(harness, "ULEAD2", "Reminder")) == 1


async def test_an_emergencys_post_approval_chase_is_not_held_at_night(harness: Harness) -> None:
    harness.slack.users["UMGR1"] = {"tz": "Europe/London"}
    harness.clock.set(EVENING)
    await declare(harness)
    before = len(harness.posts_to("UMGR1"))

    harness.clock.set(EVENING + timedelta(hours=4))  # 03:00 in London
    await harness.bot.context.service.process_due_notices()
    for _ in range(3):
        await harness.bot.context.dispatcher.dispatch_due()
    assert harness.clock.now() == EVENING + timedelta(hours=4)
    [reminder] = harness.posts_to("UMGR1")[before:]
    assert "needs post-approval" in rendered(reminder)


async def test_a_reminder_fanned_out_again_after_a_crash_holds_each_reader_once(harness: Harness) -> None:
    harness.slack.users["ULEAD1"] = {"tz": "Europe/London"}
    harness.slack.users["ULEAD2"] = {"tz": "Asia/Tokyo"}
    harness.clock.set(EVENING)
    await harness.file_change()
    await harness.settle()

    harness.clock.set(EVENING + timedelta(hours=4))
    await harness.bot.context.service.process_due_notices()
    store = OutboxStore(session_factory(harness.bot.engine))
    # The bot's own dispatcher may win the claim; when the test wins, it plays the crash.
    for fan_out in await store.claim_due(now=harness.clock.now(), limit=10, lease=timedelta(seconds=60)):
        await harness.bot.context.gateway.deliver(fan_out)  # fanned out; died before marking it sent
    harness.clock.advance(timedelta(seconds=61))  # another process takes it over and fans out again
    for _ in range(3):
        await harness.bot.context.dispatcher.dispatch_due()

    await harness.settle()
    assert harness.clock.now() == datetime(2026, 11, 24, 8, 0, tzinfo=LONDON)
    assert len(reminders(harness, "ULEAD1", "Reminder")) == 1
    assert len(reminders(harness, "ULEAD2", "Reminder")) == 1


async def test_an_approver_who_decides_before_their_held_reminder_is_not_asked_again(
    harness: Harness,
) -> None:
    harness.slack.users["ULEAD1"] = {"tz": "Europe/London"}
    harness.slack.users["ULEAD2"] = {"tz": "Europe/London"}
    harness.clock.set(EVENING)
    await harness.file_change()  # two tech leads may sign; one is enough
    await harness.settle()

    harness.clock.set(EVENING + timedelta(hours=4))  # 03:00 in London: both reminders held
    await harness.bot.context.service.process_due_notices()
    for _ in range(3):
        await harness.bot.context.dispatcher.dispatch_due()
    assert reminders(harness, "ULEAD1", "Reminder") == reminders(harness, "ULEAD2", "Reminder") == []

    harness.clock.set(datetime(2026, 11, 24, 7, 30, tzinfo=LONDON))
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")  # up early: approves
    await harness.settle()
    assert reminders(harness, "ULEAD1", "Reminder") == []  # decided: not reminded at 08:00
    assert reminders(harness, "ULEAD2", "Reminder") == []  # approved: nobody is asked any more
