"""The use cases on the in-memory repository: no database, no Slack, no HTTP."""

from __future__ import annotations

import pytest

from domain.clock import FakeClock
from domain.service import ChangeService
from tests.support.change_forms import make_service
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
