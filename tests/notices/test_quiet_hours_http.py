"""Quiet hours through the HTTP door: a DM due at night waits for its reader's morning (their
Slack time zone), once; a change about to start is told at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.flows import approved_change
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

NEW_YORK = ZoneInfo("America/New_York")


def rendered(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return params["text"] + " " + json.dumps(params.get("blocks") or [])


def threaded(harness: Harness) -> list[str]:
    return [rendered(c) for c in harness.posts_to("CCHANGES") if c.params.get("thread_ts")]


@pytest.fixture
def policy_text() -> str:
    notices = (
        "timeline:\n  notices:\n"
        '    - {id: t_minus_24h, at: -24h, audience: [thread, implementer], text: "Tomorrow."}\n'
        '    - {id: t_0, at: 0, audience: [thread, implementer], text: "Now.", buttons: implementation}\n'
    )
    quiet = 'quiet_hours: {start: "20:00", end: "08:00", unless_within: 2h}\n'
    return TEST_POLICY.replace("timeline:\n", notices, 1) + quiet


async def test_a_dm_due_at_night_waits_for_the_readers_morning_and_goes_once(harness: Harness) -> None:
    harness.slack.users["UIMPL"] = {"tz": "America/New_York"}
    start = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # T-24h is 23:00 the evening before in New York
    await approved_change(harness, starts_in=start - harness.clock.now())

    harness.clock.set(start - timedelta(hours=24))
    await harness.bot.context.service.process_due_notices()
    await harness.bot.context.dispatcher.dispatch_due()
    assert any("Tomorrow." in t for t in threaded(harness))  # the thread is told at once
    assert harness.posts_to("UIMPL") == []  # the implementer sleeps

    await harness.settle()  # nothing else is due: the clock moves on to the held DM
    morning = datetime(2026, 11, 25, 8, 0, tzinfo=NEW_YORK)
    assert harness.clock.now() == morning
    [held] = harness.posts_to("UIMPL")
    assert "Tomorrow." in rendered(held)
    await harness.tick()
    assert len(harness.posts_to("UIMPL")) == 1

    await harness.advance_to(start)  # 23:00 in New York, but the change starts now
    assert len(harness.posts_to("UIMPL")) == 2 and harness.clock.now() == start
