"""The start-up digest catch-up: a new database has missed nothing; a restart after a real miss
still posts the digest it missed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_digest_http import digests

from bot.app import build_changebot
from bot.settings import Settings
from domain.clock import FakeClock
from domain.policy_loader import parse_policy
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
