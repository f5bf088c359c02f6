"""One long story played on both repositories side by side: afterwards everything either
can be asked (every CR in full, notices, outbox, audit, lists) must be the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.clock import FakeClock
from domain.enums import Decision
from domain.ports import ChangeQuery, ListScope
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import (
    CTO,
    IMPLEMENTER,
    REQUESTER,
    change_form,
    emergency_form,
    low_risk_form,
    make_service,
)
from tests.support.contract_backends import Backend, memory_backend


async def story(service: ChangeService, clock: FakeClock) -> list[str]:
    """Intake, decisions, a move, an emergency, outcomes, reviews, freezes and notice passes."""
    low = await service.submit_change(form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER)
    high = await service.submit_change(
        form=change_form(clock, impact="high", services=["database"]), requester=REQUESTER
    )
    medium = await service.submit_change(
        form=change_form(clock, services=["redis-cache"]), requester="UOTHER"
    )
    await service.decide(change_id=high.id, user=REQUESTER, decision=Decision.APPROVE)
    await service.decide(change_id=high.id, user="ULEAD1", decision=Decision.APPROVE)
    await service.decide(change_id=high.id, user="UMGR1", decision=Decision.APPROVE)
    await service.decide(change_id=high.id, user="ULEAD2", decision=Decision.APPROVE)
    await service.decide(change_id=medium.id, user="ULEAD2", decision=Decision.APPROVE)
    start = int((medium.draft.starts_at + timedelta(hours=6)).timestamp())
    await service.reschedule(change_id=medium.id, user="UOTHER", starts_at=start, ends_at=start + 1800)
    await service.decide(change_id=medium.id, user="ULEAD1", decision=Decision.REJECT, reason="Not this week")
    emergency = await service.declare_emergency(
        form=emergency_form(services=["kubernetes"]), requester="UDEV"
    )
    await service.process_due_notices()
    clock.advance(timedelta(hours=5))
    await service.process_due_notices()
    await service.post_decide(
        change_id=emergency.id, user="UMGR2", decision=Decision.REJECT, reason="Too risky"
    )
    await service.start_freeze(user=CTO, reason="Audit week")
    await service.end_freeze(user=CTO)
    clock.set(low.draft.starts_at - timedelta(minutes=50))
    await service.process_due_notices()
    clock.set(low.draft.starts_at + timedelta(minutes=5))
    await service.record_progress(change_id=low.id, user=IMPLEMENTER, action=ProgressAction.START)
    await service.record_progress(change_id=high.id, user="UOTHER", action=ProgressAction.START)
    await service.process_due_notices()
    clock.advance(timedelta(minutes=20))
    await service.record_progress(
        change_id=low.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Slow"
    )
    await service.record_progress(change_id=high.id, user=REQUESTER, action=ProgressAction.COMPLETE)
    await service.link_incident(change_id=high.id, user=REQUESTER, incident="INC-9")
    clock.advance(timedelta(hours=3))
    await service.submit_review(change_id=low.id, user=IMPLEMENTER, answers={"result": "failed"})
    for _ in range(12):
        clock.advance(timedelta(hours=6))
        await service.process_due_notices()
    await service.run_digest()
    return [low.id, high.id, medium.id, emergency.id]


async def everything(
    backend: Backend, service: ChangeService, ids: list[str], clock: FakeClock, start: datetime
) -> dict[str, Any]:
    repo = backend.repo
    return {
        "changes": [await repo.get_change(i, history=True) for i in ids],
        "cards": await repo.get_changes(ids),
        "notices": [await backend.notices(i) for i in ids],
        "outbox": await backend.outbox(),
        "audit": await backend.audit(),
        "all": await repo.list_changes(ChangeQuery(limit=100)),
        "mine": await service.list_changes(scope=ListScope.MINE, user=REQUESTER),
        "history": await repo.changes_with_history(start=start, end=clock.now()),
        "reviews": (
            await repo.review_counts(start=start, end=clock.now()),
            await repo.overdue_reviews(now=clock.now()),
            await repo.caused_incidents(ids),
        ),
        "freezes": await repo.freezes(start=start, end=clock.now()),
        "next_notice": await repo.next_notice_due(),
    }


async def test_both_repositories_tell_the_same_story(sqlite_backend: Backend, clock: FakeClock) -> None:
    start = clock.now()
    told = []
    for backend in (memory_backend(), sqlite_backend):
        own_clock = FakeClock(start)
        service = make_service(backend.repo, own_clock)
        ids = await story(service, own_clock)
        told.append(await everything(backend, service, ids, own_clock, start))

    memory, sqlite = told
    assert memory.keys() == sqlite.keys()
    for key in memory:
        assert memory[key] == sqlite[key], key
    assert len(memory["outbox"]) > 40 and len(memory["audit"]) > 40  # the story did happen
