"""Two replicas over one PostgreSQL, both answering the deployments waiting at the gate
at once: each deployment gets exactly one answer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Changebot, build_changebot
from tests.gates.github_support import Deliveries, github_policy, settle
from tests.support import pg_template
from tests.support.flows import CR, approved
from tests.support.github_fake import GithubFake
from tests.support.harness import Harness

pytestmark = pytest.mark.postgres
DEPLOYMENTS = 12


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Any:
    server = pg_template.shared_postgres()
    name = f"g{next(pg_template.db_counter)}"
    server.create_database(name, template="changebot_template")
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def policy_text(github: GithubFake, tmp_path: Path) -> str:
    return github_policy(github, tmp_path / "github-app.pem")


@pytest.fixture
async def second(harness: Harness) -> AsyncIterator[Changebot]:
    """Another replica: its own process state, the same database, GitHub and Slack."""
    bot = build_changebot(harness.bot.settings, harness.bot.policy, clock=harness.clock)
    await bot.start(run_scheduler=False)
    await bot.context.dispatcher.drain()
    yield bot
    await bot.stop()


async def test_two_replicas_ticking_together_answer_each_deployment_once(
    harness: Harness, second: Changebot, github: GithubFake
) -> None:
    deliveries = Deliveries(harness, github)
    await approved(harness)  # approved at once; its window opens in two hours
    for i in range(DEPLOYMENTS):
        await deliveries.request(deployment_id=100 + i, run_id=500 + i, ref=CR)
    assert github.attempts == []  # too early for all of them
    harness.clock.set((await harness.change(CR)).draft.starts_at)

    bots = [harness.bot, second]
    for _ in range(3):
        await asyncio.gather(*(b.deployments.gates.answer_pending() for b in bots if b.deployments))
    for bot in bots:
        await settle(harness, bot)

    assert Counter(github.attempts) == {(500 + i, "production"): 1 for i in range(DEPLOYMENTS)}
    assert github.states() == ["approved"] * DEPLOYMENTS
