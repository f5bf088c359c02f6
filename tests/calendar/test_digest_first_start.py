"""The start-up catch-up of the digest, CAB agenda and monthly report: a new database has missed
nothing; a restart after a real miss still posts what it missed."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_changebot
from bot.settings import Settings
from domain.clock import FakeClock
from domain.policy_loader import parse_policy
from tests.support.flows import digests
from tests.support.harness import Harness
from tests.support.slack_requests import SIGNING_SECRET
from tooling.emulator import SlackEmulator

Run = Callable[[], AbstractAsyncContextManager[Harness]]


@pytest.fixture
def running(database_url: str, emulator: SlackEmulator, clock: FakeClock, policy_text: str) -> Run:
    """Start the bot on the test's database as `changebot serve` does (catch-up included)."""

    @asynccontextmanager
    async def run() -> AsyncIterator[Harness]:
        settings = Settings(
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=emulator.base_url,
            database_url=database_url,
        )
        bot = build_changebot(settings, parse_policy(policy_text), clock=clock)
        await bot.start(run_scheduler=False)
        http = TestClient(TestServer(bot.web))
        await http.start_server()
        harness = Harness(bot, http, emulator, clock)
        try:
            await harness.settle()
            yield harness
        finally:
            await http.close()
            await bot.stop()

    return run


async def test_the_first_start_on_a_new_database_posts_no_missed_digest(
    running: Run, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="changebot.events")
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # an hour after the 09:00 digest
    async with running() as harness:
        assert digests(harness) == []
        assert not await harness.bot.context.service.run_digest()  # today's counts as done
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))  # down over the next 09:00: a real miss
    async with running() as harness:
        [digest] = digests(harness)
        assert "Change calendar for Tue 24 Nov" in digest
    assert [r.getMessage() for r in caplog.records if r.name == "changebot.events"] == [
        "digest: a new database, nothing missed (2026-11-23 recorded as done, not posted)",
        "digest 2026-11-24 queued",
    ]


async def test_a_first_start_before_the_digest_time_still_catches_up_later(
    running: Run, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # before 09:00: nothing to catch up
    async with running() as harness:
        assert digests(harness) == []
    clock.set(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))  # stopped at 08:00, back at 09:30
    async with running() as harness:
        [digest] = digests(harness)
        assert "Change calendar for Mon 23 Nov" in digest


def posts(harness: Harness, heading: str) -> list[str]:
    return [
        c.params.get("text", "") + json.dumps(c.params.get("blocks") or [])
        for c in harness.posts_to("CCHANGES")
        if heading in c.params.get("text", "") + json.dumps(c.params.get("blocks") or [])
    ]


# (heading, the first start within the job's catch-up window, a restart after a real miss)
WEEKLY_AND_MONTHLY = [
    pytest.param(
        "CAB agenda",
        datetime(2026, 11, 25, 16, 0, tzinfo=UTC),  # Wednesday, an hour after the 15:00 agenda
        datetime(2026, 12, 2, 16, 0, tzinfo=UTC),  # down over the next Wednesday's
        id="cab",
    ),
    pytest.param(
        "Change report, November 2026",
        datetime(2026, 11, 1, 10, 0, tzinfo=UTC),  # the 1st, an hour after the 09:00 report
        datetime(2026, 12, 1, 10, 0, tzinfo=UTC),  # down over the next month's
        id="report",
    ),
]


@pytest.mark.parametrize(("heading", "first", "missed"), WEEKLY_AND_MONTHLY)
async def test_the_first_start_on_a_new_database_posts_no_missed_agenda_or_report(
    running: Run, clock: FakeClock, heading: str, first: datetime, missed: datetime
) -> None:
    clock.set(first)
    async with running() as harness:
        service = harness.bot.context.service
        assert not await service.run_cab_agenda() and not await service.run_monthly_report()
        assert not any("CAB agenda" in p or "Change report" in p for p in posts(harness, ""))
    clock.set(missed)
    async with running() as harness:
        assert len(posts(harness, heading)) == 1


@pytest.mark.parametrize(
    ("heading", "before", "after"),
    [
        pytest.param(
            "CAB agenda",
            datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
            datetime(2026, 11, 25, 15, 30, tzinfo=UTC),
            id="cab",
        ),
        pytest.param(
            "Change report, October 2026",
            datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
            id="report",
        ),
    ],
)
async def test_a_first_start_before_the_agenda_or_report_time_still_catches_up_later(
    running: Run, clock: FakeClock, heading: str, before: datetime, after: datetime
) -> None:
    clock.set(before)  # the first start, before the time: nothing due, nothing posted
    async with running() as harness:
        assert posts(harness, heading) == []
    clock.set(after)  # stopped before the time, back after it: a real miss
    async with running() as harness:
        assert len(posts(harness, heading)) == 1
