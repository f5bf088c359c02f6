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
from tests.support.change_forms import make_service
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
