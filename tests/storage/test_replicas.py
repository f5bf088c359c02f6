"""Two replicas on one PostgreSQL: every message, notice and cron period exactly once,
quorum exact under concurrent clicks on both, and a database restart survived."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import Changebot, build_changebot
from bot.settings import Settings
from domain.enums import Decision, Status
from domain.intake import ChangeForm
from domain.policy_loader import parse_policy
from tests.support import pg_template
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import SIGNING_SECRET

pytestmark = pytest.mark.postgres
SEQUENCES = 1000  # randomised click sequences, each on its own CR


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Any:
    server = pg_template.shared_postgres()
    name = f"r{next(pg_template.db_counter)}"
    server.create_database(name, template="changebot_template")
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
async def second(harness: Harness) -> AsyncIterator[Changebot]:
    """Another replica: its own process state, the same database and Slack."""
    settings = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=harness.slack.base_url,
        database_url=harness.bot.settings.database_url,
    )
    bot = build_changebot(settings, parse_policy(TEST_POLICY), clock=harness.clock)
    await bot.start(run_scheduler=False)
    await bot.context.dispatcher.drain()
    yield bot
    await bot.stop()


def form(harness: Harness, i: int, **extra: Any) -> ChangeForm:
    start = int((harness.clock.now() + timedelta(days=2, hours=i)).timestamp())
    return ChangeForm(
        title=f"Change {i}",
        category="normal",
        impact=extra.get("impact", "low"),
        likelihood=extra.get("likelihood", "low"),
        services=["api-server"],
        starts_at=start,
        ends_at=start + 1800,
        description="d",
        rollback_plan="r",
        implementer=f"UIMPL{i % 7}",
    )


async def dispatch_everything(harness: Harness, bots: list[Changebot]) -> None:
    """Both replicas tick at once until nothing is left."""
    for _ in range(400):
        await asyncio.gather(*(b.context.service.process_due_notices() for b in bots))
        await asyncio.gather(*(b.context.dispatcher.dispatch_due() for b in bots))
        counts = await bots[0].context.dispatcher._store.counts()
        if not counts.get("pending") and not counts.get("sending"):
            return
        next_due = await bots[0].context.dispatcher._store.next_due(after=harness.clock.now())
        if next_due is not None:
            harness.clock.set(next_due)
    raise AssertionError("outbox never drained")


async def test_messages_and_notices_go_out_once_across_replicas(harness: Harness, second: Changebot) -> None:
    services = [harness.bot.context.service, second.context.service]
    await asyncio.gather(
        *(services[i % 2].submit_change(form=form(harness, i), requester="UREQ") for i in range(40))
    )
    await dispatch_everything(harness, [harness.bot, second])
    harness.clock.advance(timedelta(days=5))  # every timeline notice of every change is now due
    await dispatch_everything(harness, [harness.bot, second])
    sent = Counter(
        (c.params["channel"], c.params["text"]) for c in harness.slack.calls_to("chat.postMessage")
    )
    duplicates = {k: n for k, n in sent.items() if n > 1}
    assert duplicates == {}
    cards = [
        c
        for c in harness.slack.calls_to("chat.postMessage")
        if c.params["channel"] == "CCHANGES" and c.params["text"].startswith("CR-2026-")
    ]
    assert sorted(c.params["text"].split(":")[0] for c in cards) == [f"CR-2026-{i:04d}" for i in range(1, 41)]
    rows = [
        n
        for i in range(1, 41)
        for n in await harness.bot.context.gateway.repository.notices(f"CR-2026-{i:04d}")
    ]
    assert rows and {n.state for n in rows} <= {"sent", "skipped"}
    dms = [c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"].startswith("UIMPL")]
    to_implementer = {"t_minus_1h", "t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m", "overrun"}
    assert len(dms) == sum(1 for n in rows if n.state == "sent" and n.key in to_implementer) > 0


async def test_the_pace_per_channel_holds_across_replicas(harness: Harness, second: Changebot) -> None:
    from domain.intents import Intent, IntentKind
    from domain.messages import Text

    store = harness.bot.context.dispatcher._store
    await store.add(
        [Intent(IntentKind.MESSAGE, None, "CBUSY", Text(text=f"m{i}")) for i in range(6)],
        now=harness.clock.now(),
    )
    await asyncio.gather(
        harness.bot.context.dispatcher.dispatch_due(), second.context.dispatcher.dispatch_due()
    )
    assert len(harness.slack.calls_to("chat.postMessage")) == 1  # two senders, one slot per second
    await dispatch_everything(harness, [harness.bot, second])
    assert sorted(c.params["text"] for c in harness.slack.calls_to("chat.postMessage")) == [
        f"m{i}" for i in range(6)
    ]


async def test_cron_periods_run_once_across_replicas(harness: Harness, second: Changebot) -> None:
    harness.clock.set(harness.clock.now().replace(hour=9, minute=0))
    results = await asyncio.gather(
        *(b.context.service.run_digest() for b in (harness.bot, second) for _ in range(3))
    )
    assert results.count(True) == 1


async def test_random_concurrent_clicks_on_two_replicas_match_the_domain_model(
    harness: Harness, second: Changebot
) -> None:
    rng = random.Random(20261123)
    services = [harness.bot.context.service, second.context.service]
    requesters = [rng.choice(["UREQ", "ULEAD1", "UMGR1"]) for _ in range(SEQUENCES)]
    changes = []
    for batch in range(0, SEQUENCES, 50):  # high risk: 2 tech leads + 1 manager (a user group)
        changes += await asyncio.gather(
            *(
                services[i % 2].submit_change(
                    form=form(harness, i, impact="critical", likelihood="low"), requester=requesters[i]
                )
                for i in range(batch, min(batch + 50, SEQUENCES))
            )
        )
    users = ["ULEAD1", "ULEAD2", "UMGR1", "UMGR2", "UREQ", "USTRANGER", "UCTO"]

    async def click(change_id: str, user: str, decision: Decision) -> None:
        service = rng.choice(services)
        if decision is Decision.APPROVE:
            await service.decide(change_id=change_id, user=user, decision=decision)
        else:
            await service.decide(change_id=change_id, user=user, decision=decision, reason="no")

    for batch in range(0, SEQUENCES, 25):  # 25 sequences at a time, each with all its clicks at once
        clicks = [
            click(change.id, rng.choice(users), Decision.REJECT if rng.random() < 0.1 else Decision.APPROVE)
            for change in changes[batch : batch + 25]
            for _ in range(rng.randint(3, 10))
        ]
        await asyncio.gather(*clicks)
    for change in changes:
        final = await services[0].get_change(change_id=change.id)
        approvers = [a.user for a in final.approvals]
        assert len(approvers) == len(set(approvers)), final.id
        assert final.requester not in approvers
        assert not set(approvers) - {"ULEAD1", "ULEAD2", "UMGR1", "UMGR2"}
        per_step = Counter(a.step_index for a in final.approvals if a.decision is Decision.APPROVE)
        assert per_step[0] <= 2 and per_step[1] <= 1
        rejected = any(a.decision is Decision.REJECT for a in final.approvals)
        expected = (
            Status.REJECTED
            if rejected
            else Status.APPROVED
            if per_step == {0: 2, 1: 1}
            else Status.PENDING_APPROVAL
        )
        assert final.status is expected, (final.id, final.approvals)
        assert sum(1 for a in final.approvals if a.decision is Decision.REJECT) <= 1


async def test_the_bot_rides_out_a_database_restart(harness: Harness) -> None:
    server = pg_template.shared_postgres()
    await harness.file_change()
    server.halt("fast")
    try:
        from tests.support.slack_requests import command_body

        answer = await harness.post(
            command_body("help", user="UREQ"), content_type="application/x-www-form-urlencoded"
        )
        assert answer.status == 200 and "/change new" in await answer.text()  # needs no database
        health = await (await harness.http.get("/healthz")).json()
        assert health["database"] is False
    finally:
        server.resume()
    health = await (await harness.http.get("/healthz")).json()
    assert health["database"] is True  # the pool reconnected by itself
    await harness.file_change(
        title="After the restart",
        starts_at=int((harness.clock.now() + timedelta(days=4)).timestamp()),
        ends_at=int((harness.clock.now() + timedelta(days=4, hours=1)).timestamp()),
    )
    change = await harness.change("CR-2026-0002")
    assert change.draft.title == "After the restart"
    assert any(str(c.params.get("text")).startswith("CR-2026-0002") for c in harness.posts_to("CCHANGES"))
