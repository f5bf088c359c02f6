"""The use cases on the in-memory repository (no database, no Slack, no HTTP), and for
the contract tests the same on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.clock import FakeClock
from domain.service import ChangeService
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from tests.support.change_forms import make_service
from tests.support.contract_backends import Backend, copy_database, memory_backend, sql_backend
from tests.support.memory_repository import MemoryChangeRepository, MemoryNotifier


@pytest.fixture
def repo() -> MemoryChangeRepository:
    return MemoryChangeRepository()


@pytest.fixture
def notifier() -> MemoryNotifier:
    return MemoryNotifier()


@pytest.fixture
def service(repo: MemoryChangeRepository, clock: FakeClock, notifier: MemoryNotifier) -> ChangeService:
    return make_service(repo, clock, notifier=notifier)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once per run; each contract test gets a copy (migrating costs ~0.5 s)."""
    path = tmp_path_factory.mktemp("contract") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def sqlite_backend(tmp_path: Path, migrated_sqlite: Path) -> AsyncIterator[Backend]:
    path = tmp_path / "changebot.db"
    copy_database(migrated_sqlite, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        yield sql_backend(session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each contract test runs twice: on the in-memory repository and on SQLite."""
    if request.param == "memory":
        return memory_backend()
    sqlite: Backend = request.getfixturevalue("sqlite_backend")
    return sqlite
