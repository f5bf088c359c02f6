"""The approval chase and delegation on the in-memory fake and on SQLite alike: the same
deadline stored and moved, the same notices, the same delegations in force."""

from __future__ import annotations

from datetime import date, timedelta

from domain.clock import FakeClock
from domain.delegation import Delegation
from domain.enums import Decision
from domain.model import AuditAction, AuditEntry
from tests.support.change_forms import CTO, REQUESTER, change_form, make_service, policy_with
from tests.support.contract_backends import Backend


async def test_the_deadline_and_its_chase_are_stored_and_dropped_alike(
    backend: Backend, clock: FakeClock
) -> None:
    service = make_service(backend.repo, clock)
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    stored = await service.get_change(change_id=change.id)
    assert stored.approval_due_at == clock.now() + timedelta(hours=8)
    assert [(key, state) for key, state, *_ in await backend.notices(change.id)] == [
        ("approval_reminder", "pending"),
        ("approval_deadline", "pending"),
        ("approval_at_start", "pending"),
    ]

    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)

    states = {key: state for key, state, *_ in await backend.notices(change.id)}
    assert states["approval_reminder"] == states["approval_deadline"] == "cancelled"
    assert states["t_minus_24h"] == "pending"


async def test_delegations_start_replace_and_end_alike(backend: Backend, clock: FakeClock) -> None:
    repo, now = backend.repo, clock.now()
    first = Delegation(CTO, "ULEAD1", now, now + timedelta(days=2))
    entry = AuditEntry(CTO, AuditAction.DELEGATED, now, {"delegate": "ULEAD1"})
    await repo.start_delegation(first, now=now, audit=[entry], intents=[])
    assert await repo.delegations(now=now) == [first]
    assert await repo.delegations(now=now + timedelta(days=2)) == []  # `until` is exclusive

    clock.advance(timedelta(hours=1))
    second = Delegation(CTO, "ULEAD2", clock.now(), now + timedelta(days=5))
    await repo.start_delegation(second, now=clock.now(), audit=[entry], intents=[])
    assert await repo.delegations(now=clock.now()) == [second]  # the first one ended

    ended = await repo.end_delegation(delegator=CTO, now=clock.now(), audit=[entry], intents=[])
    assert ended == second
    assert await repo.delegations(now=clock.now()) == []
    assert await repo.end_delegation(delegator=CTO, now=clock.now(), audit=[entry], intents=[]) is None
    assert [row[:3] for row in await backend.audit()] == [(None, CTO, "delegated")] * 3


async def test_a_delegation_through_the_service_is_the_same_on_both(
    backend: Backend, clock: FakeClock
) -> None:
    policy = policy_with().model_copy(
        update={"roles": {**policy_with().roles, "architects": ["UCTO", "ULEAD1"]}}
    )
    service = make_service(backend.repo, clock, policy=policy)
    outcome = await service.delegate(user=CTO, delegate="ULEAD1", until=date(2026, 12, 24))
    assert outcome.delegation is not None
    assert await backend.repo.delegations(now=clock.now()) == [outcome.delegation]
    assert [(kind, channel) for kind, channel, *_ in await backend.outbox()] == [("message", "ULEAD1")]
