"""The timeline pass through ChangeService: due notices become intents exactly once."""

from __future__ import annotations

from datetime import timedelta

from domain.clock import FakeClock
from domain.intents import IntentKind
from domain.model import AuditAction, Change
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import IMPLEMENTER, REQUESTER, change_form, low_risk_form
from tests.support.memory_repository import MemoryChangeRepository, MemoryNotifier


async def approved(service: ChangeService, clock: FakeClock) -> Change:
    return await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )


async def test_a_due_notice_becomes_its_posts_once(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock, notifier: MemoryNotifier
) -> None:
    change = await approved(service, clock)
    assert await service.seconds_to_next_notice() == timedelta(hours=24).total_seconds()
    before = len(repo.outbox)

    assert await service.process_due_notices() == 0  # nothing due yet
    clock.set(change.draft.starts_at - timedelta(hours=24))
    wakes = notifier.wakes
    assert await service.process_due_notices() == 1

    sent = repo.intents_for(change.id)[before:]
    assert [(i.kind, i.channel) for i in sent] == [
        (IntentKind.MESSAGE, "CCHANGES"),
        (IntentKind.MESSAGE, "CSTAKE"),
    ]
    notice = (await repo.notices(change.id))[0]
    assert (notice.key, notice.state, notice.late, notice.done_at) == (
        "t_minus_24h",
        "sent",
        False,
        clock.now(),
    )
    assert notifier.wakes == wakes + 1
    trail = (await service.get_change(change_id=change.id)).audit
    assert [(e.action, e.details.get("notice")) for e in trail][-1] == (
        AuditAction.NOTICE_SENT,
        "t_minus_24h",
    )

    assert await service.process_due_notices() == 0
    assert len(repo.outbox) == before + 2
    assert await service.seconds_to_next_notice() == timedelta(hours=23).total_seconds()


async def test_after_downtime_stale_notices_are_skipped_and_the_rest_sent_late(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at + timedelta(minutes=30))

    assert await service.process_due_notices() == 6

    states = {n.key: (n.state, n.late) for n in await repo.notices(change.id)}
    assert states == {
        "t_minus_24h": ("skipped", False),
        "t_minus_1h": ("skipped", False),
        "t_minus_15m": ("skipped", False),
        "t_0": ("sent", True),
        "t_plus_15m": ("sent", True),
        "t_plus_30m": ("sent", False),
        "overrun": ("pending", False),
    }
    trail = [
        (e.action, e.details.get("notice")) for e in (await service.get_change(change_id=change.id)).audit
    ]
    assert trail[-6:] == [
        (AuditAction.NOTICE_SKIPPED, "t_minus_24h"),
        (AuditAction.NOTICE_SKIPPED, "t_minus_1h"),
        (AuditAction.NOTICE_SKIPPED, "t_minus_15m"),
        (AuditAction.NOTICE_SENT_LATE, "t_0"),
        (AuditAction.NOTICE_SENT_LATE, "t_plus_15m"),
        (AuditAction.NOTICE_SENT, "t_plus_30m"),  # sent on time: audited too
    ]
    assert (IntentKind.MESSAGE, IMPLEMENTER) in [(i.kind, i.channel) for i in repo.intents_for(change.id)]


async def test_a_pass_takes_at_most_its_limit_earliest_first(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at + timedelta(minutes=30))

    assert await service.process_due_notices(limit=4) == 4
    assert await service.process_due_notices(limit=4) == 2
    assert [n.state for n in await repo.notices(change.id)] == [
        "skipped",
        "skipped",
        "skipped",
        "sent",
        "sent",
        "sent",
        "pending",
    ]


async def test_a_cancelled_change_has_nothing_left_to_send(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    await service.cancel(change_id=change.id, user=REQUESTER)
    clock.set(change.draft.ends_at + timedelta(hours=1))

    assert await service.process_due_notices() == 0
    assert await service.seconds_to_next_notice() is None


async def test_an_unwritten_review_is_chased_and_escalated(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)
    await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Disk full"
    )
    before = len(repo.outbox)

    clock.advance(timedelta(hours=36))
    assert await service.process_due_notices() == 1
    clock.advance(timedelta(hours=12))
    assert await service.process_due_notices() == 1

    chased = [(i.kind, i.channel) for i in repo.intents_for(change.id)[before:]]
    assert chased == [
        (IntentKind.MESSAGE, IMPLEMENTER),
        (IntentKind.MESSAGE, IMPLEMENTER),
        (IntentKind.DM_ROLE, None),
    ]
    trail = (await service.get_change(change_id=change.id)).audit
    assert trail[-1].action is AuditAction.REVIEW_OVERDUE
    clock.advance(timedelta(hours=1))
    assert await repo.overdue_reviews(now=clock.now()) == [change.id]


async def test_a_written_review_is_not_chased(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await approved(service, clock)
    clock.set(change.draft.starts_at)
    await service.record_progress(
        change_id=change.id, user=IMPLEMENTER, action=ProgressAction.FAIL, notes="Disk full"
    )
    await service.submit_review(change_id=change.id, user=IMPLEMENTER, answers={"result": "failed"})
    clock.advance(timedelta(days=3))

    assert await service.process_due_notices() == 2

    reviews = [(n.state, n.note) for n in await repo.notices(change.id) if n.key.startswith("review_")]
    assert reviews == [("skipped", "the review is written")] * 2
    assert await repo.overdue_reviews(now=clock.now()) == []


async def test_no_short_notice_for_a_pre_approved_standard_change(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    soon = timedelta(hours=2)  # the T-24h heads-up is already past at filing
    standard = await service.submit_change(
        form=change_form(
            clock,
            starts_in=soon,
            category="standard",
            catalog="cache-clear",
            impact=None,
            likelihood=None,
            description=None,
        ),
        requester=REQUESTER,
    )
    normal = await service.submit_change(
        form=low_risk_form(clock, starts_in=soon + timedelta(hours=2), services=["database"]),
        requester=REQUESTER,
    )
    assert "short_notice" not in {n.key for n in await repo.notices(standard.id)}
    assert "t_minus_1h" in {n.key for n in await repo.notices(standard.id)}
    assert "short_notice" in {n.key for n in await repo.notices(normal.id)}  # auto-approved, not standard
