"""Fixtures: the Slack emulator, SQLite and a throwaway PostgreSQL, and a running bot
reached over signed HTTP, exactly as Slack reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_changebot
from bot.settings import Settings
from domain.clock import FakeClock
from domain.policy_loader import parse_policy
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.repository import SqlChangeRepository
from tests.support.harness import START, Db, Harness
from tests.support.pagerduty_fake import ROUTING_KEY, PagerDutyFake
from tests.support.pg_template import db_counter, shared_postgres, stop_shared_postgres
from tests.support.policy_fixture import MANAGERS, TEST_POLICY
from tests.support.slack_requests import SIGNING_SECRET
from tooling.emulator import SlackEmulator


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_shared_postgres()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'changebot.db'}"
        upgrade(url)
        yield url
        return
    server = shared_postgres()
    name = f"t{next(db_counter)}"
    server.create_database(name, template="changebot_template")
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def policy_text() -> str:
    return TEST_POLICY


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(clock=clock)
    emu.usergroups["SMANAGERS"] = list(MANAGERS)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    engine = create_engine(database_url)
    statements: list[str] = []

    @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sessions = session_factory(engine)
    try:
        yield Db(sessions, SqlChangeRepository(sessions), statements)
    finally:
        await engine.dispose()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Extra Settings fields for the bot under test (a test module can override this)."""
    return {}


@pytest.fixture
async def harness(
    database_url: str,
    emulator: SlackEmulator,
    clock: FakeClock,
    policy_text: str,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[Harness]:
    settings = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=emulator.base_url,
        database_url=database_url,
        **settings_overrides,
    )
    bot = build_changebot(settings, parse_policy(policy_text), clock=clock)
    await bot.start(run_scheduler=False)
    await bot.context.dispatcher.drain()  # the start-up catch-up pass must not race the test
    server = TestServer(bot.web)
    http = TestClient(server)
    await http.start_server()
    harness = Harness(bot, http, emulator, clock)
    try:
        yield harness
    finally:
        await http.close()
        await bot.stop()


@pytest.fixture
async def pagerduty(monkeypatch: pytest.MonkeyPatch, emulator: SlackEmulator) -> AsyncIterator[PagerDutyFake]:
    server = PagerDutyFake(api_token="pd-token", routing_key=ROUTING_KEY)
    await server.start()
    monkeypatch.setenv("SSL_CERT_FILE", server.ca_file)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server.add_user("PALICE", email="alice@example.com")
    server.add_user("PBOB", email="bob@example.com")
    server.add_oncall("PALICE", level=1)
    server.add_oncall("PBOB", level=2)
    emulator.users = {"UALICE": {"email": "alice@example.com"}, "UBOB": {"email": "bob@example.com"}}
    yield server
    await server.stop()
