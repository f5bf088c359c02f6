"""The gates use case on the in-memory repository, and on a migrated SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.clock import FakeClock
from domain.service import ChangeService
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.repository import SqlChangeRepository
from tests.gates.github_support import SECRET
from tests.support.change_forms import make_service
from tests.support.github_fake import GithubFake
from tests.support.memory_repository import MemoryChangeRepository


@pytest.fixture
def repo() -> MemoryChangeRepository:
    return MemoryChangeRepository()


@pytest.fixture
def service(repo: MemoryChangeRepository, clock: FakeClock) -> ChangeService:
    return make_service(repo, clock)


@pytest.fixture
async def sqlite_service(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ChangeService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'changebot.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        yield make_service(SqlChangeRepository(session_factory(engine)), clock)
    finally:
        await engine.dispose()


@pytest.fixture
async def github(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GithubFake]:
    """The HTTPS fake of GitHub, trusted by the bot's client, with the webhook secret set."""
    fake = GithubFake()
    await fake.start()
    monkeypatch.setenv("SSL_CERT_FILE", fake.ca_file)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    yield fake
    await fake.stop()
