"""The ChangeRepository port itself, on the in-memory fake and on SQLite: the guarantees
the use cases lean on (version guard, one decision per user, leases, dedupe, queries)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.intents import Intent, IntentKind
from domain.messages import Text
from domain.model import (
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    Phase,
    PostState,
    Review,
)
from domain.ports import ChangeQuery, ChangeUpdate, NoticeSettlement
from domain.service import ChangeService
from domain.timeline import PlannedNotice
from tests.support.change_forms import REQUESTER, change_form, emergency_form, low_risk_form, make_service
from tests.support.contract_backends import Backend

LEASE = timedelta(seconds=15)


@pytest.fixture
def service(backend: Backend, clock: FakeClock) -> ChangeService:
    return make_service(backend.repo, clock)


def note(clock: FakeClock, text: str = "x") -> AuditEntry:
    return AuditEntry("UTEST", AuditAction.RESCHEDULED, clock.now(), {"text": text, "items": (1, 2)})


def message(change: Change, key: str | None = None) -> Intent:
    return Intent(IntentKind.MESSAGE, change.id, "CCHANGES", Text(text="test"), dedupe_key=key)


async def test_a_write_at_a_stale_version_loses_and_writes_nothing(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    repo = backend.repo
    clock.advance(timedelta(minutes=1))
    update = ChangeUpdate(at=clock.now(), status=Status.CANCELLED, outcome_notes="Gone")
    audit_before, outbox_before = len(await backend.audit()), len(await backend.outbox())

    first = await repo.update_change(
        change_id=change.id, expected_version=1, update=update, audit=[note(clock)], intents=[message(change)]
    )
    stale = await repo.update_change(
        change_id=change.id, expected_version=1, update=update, audit=[note(clock)], intents=[message(change)]
    )
    missing = await repo.update_change(
        change_id="CR-2026-0404", expected_version=1, update=update, audit=[], intents=[]
    )

    assert (first, stale, missing) == (True, False, False)
    stored = await repo.get_change(change.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.updated_at, stored.outcome_notes) == (
        Status.CANCELLED,
        2,
        clock.now(),
        "Gone",
    )
    assert stored.audit[-1].details == {"text": "x", "items": [1, 2]}  # as JSON gives it back
    assert len(await backend.audit()) == audit_before + 1
    assert len(await backend.outbox()) == outbox_before + 1


async def test_one_decision_per_user_and_phase(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock, impact="high"), requester=REQUESTER)
    repo = backend.repo

    def decision(user: str, phase: Phase = Phase.PRE) -> ChangeUpdate:
        return ChangeUpdate(
            at=clock.now(), approval=ApprovalEntry(user, Decision.APPROVE, 0, clock.now(), "", phase)
        )

    first = await repo.update_change(
        change_id=change.id, expected_version=1, update=decision("ULEAD1"), audit=[], intents=[]
    )
    twice = await repo.update_change(
        change_id=change.id, expected_version=2, update=decision("ULEAD1"), audit=[note(clock)], intents=[]
    )
    post = await repo.update_change(
        change_id=change.id, expected_version=2, update=decision("ULEAD1", Phase.POST), audit=[], intents=[]
    )
    voided = await repo.update_change(
        change_id=change.id,
        expected_version=3,
        update=ChangeUpdate(at=clock.now(), void_approvals=True, approval=decision("ULEAD1").approval),
        audit=[],
        intents=[],
    )

    assert (first, twice, post, voided) == (True, False, True, True)
    stored = await repo.get_change(change.id)
    assert stored is not None and stored.version == 4
    assert [a.user for a in stored.approvals] == ["ULEAD1"]  # voided, then decided again
    assert [a.user for a in stored.post_approvals] == ["ULEAD1"]
    assert AuditAction.RESCHEDULED not in [e.action for e in stored.audit]


async def test_a_moved_window_keeps_the_chases_and_replans_the_rest(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    later = clock.now() + timedelta(hours=5)

    assert await backend.repo.update_change(
        change_id=change.id,
        expected_version=1,
        update=ChangeUpdate(
            at=clock.now(),
            starts_at=later,
            ends_at=later + timedelta(hours=1),
            replace_notices=[PlannedNotice("t_0", later, later + timedelta(hours=1))],
            request_review=Review(clock.now(), clock.now() + timedelta(days=1), "asked"),
        ),
        audit=[],
        intents=[],
    )

    states = {n[0]: n[1] for n in await backend.notices(change.id)}
    window = [(n[0], n[1], n[2]) for n in await backend.notices(change.id) if not n[0].startswith("post_")]
    assert window == [
        ("t_0", "cancelled", change.draft.starts_at),
        ("t_plus_15m", "cancelled", change.draft.starts_at + timedelta(minutes=15)),
        ("t_plus_30m", "cancelled", change.draft.starts_at + timedelta(minutes=30)),
        ("overrun", "cancelled", change.draft.ends_at),
        ("t_0", "pending", later),
    ]
    assert {v for k, v in states.items() if k.startswith("post_")} == {"pending"}
    stored = await backend.repo.get_change(change.id)
    assert stored is not None
    assert (stored.draft.starts_at, stored.draft.ends_at) == (later, later + timedelta(hours=1))
    assert stored.review is not None and stored.review.reason == "asked"


async def test_due_notices_are_claimed_under_a_lease_and_settled_once(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    repo = backend.repo
    now = change.draft.starts_at + timedelta(minutes=30)
    assert await repo.next_notice_due() == change.draft.starts_at - timedelta(hours=24)

    first = await repo.claim_due_notices(now=now, limit=2, lease=LEASE)
    second = await repo.claim_due_notices(now=now, limit=10, lease=LEASE)
    held = await repo.claim_due_notices(now=now + LEASE, limit=10, lease=LEASE)
    taken_over = await repo.claim_due_notices(now=now + LEASE + timedelta(seconds=1), limit=1, lease=LEASE)

    assert [n.key for n in first] == ["t_minus_24h", "t_minus_1h"]
    assert [n.key for n in second] == ["t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m"]  # overrun: not yet
    assert held == []  # a lease runs until its end
    assert [n.id for n in taken_over] == [first[0].id]  # the claimer died: taken over, earliest first
    assert (first[0].change_id, first[0].due_at) == (change.id, change.draft.starts_at - timedelta(hours=24))
    assert await repo.next_notice_due() == change.draft.ends_at

    def settled(notice_id: int, *, sent: bool = True, post: PostState | None = None) -> NoticeSettlement:
        return NoticeSettlement(
            notice_id,
            change.id,
            sent=sent,
            late=sent,
            note=None if sent else "stale",
            audit=[note(clock, str(notice_id))],
            intents=[message(change, f"n{notice_id}")],
            post_state=post,
        )

    count = await repo.settle_notices(
        [
            settled(first[0].id),
            settled(first[1].id, sent=False),
            settled(second[0].id, post=PostState.OVERDUE),
        ],
        now=now,
    )
    again = await repo.settle_notices([settled(first[0].id)], now=now)

    assert (count, again) == (2, 0)  # no post-approval pending: that one stays claimed
    rows = {n[0]: (n[1], n[4], n[5], n[6]) for n in await backend.notices(change.id)}
    assert rows["t_minus_24h"] == ("sent", True, None, now)
    assert rows["t_minus_1h"] == ("skipped", False, "stale", now)
    assert rows["t_0"][0] == rows["t_plus_15m"][0] == "sending"
    assert [row[3] for row in await backend.outbox()][-2:] == [f"n{first[0].id}", f"n{first[1].id}"]
    stored = await repo.get_change(change.id)
    assert stored is not None and stored.version == 1


async def test_a_settlement_moves_a_pending_post_approval_once(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    repo = backend.repo
    clock.advance(timedelta(hours=25))
    due = [
        n
        for n in await repo.claim_due_notices(now=clock.now(), limit=20, lease=LEASE)
        if n.key.startswith("post_")
    ]

    settlements = [
        NoticeSettlement(
            n.id,
            change.id,
            sent=True,
            late=True,
            note=None,
            audit=[],
            intents=[],
            post_state=PostState.OVERDUE,
        )
        for n in due
    ]
    assert await repo.settle_notices(settlements, now=clock.now()) == 1  # then it is no longer pending

    stored = await repo.get_change(change.id)
    assert stored is not None
    assert (stored.post_state, stored.version, stored.updated_at) == (PostState.OVERDUE, 2, clock.now())


async def test_an_intent_with_a_known_dedupe_key_is_stored_once(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    before = await backend.outbox()

    await backend.repo.add_intents(
        [message(change, "k"), message(change, "k"), message(change), message(change)], now=clock.now()
    )
    await backend.repo.add_intents(
        [message(change, "k"), message(change, f"{change.id}:filed")], now=clock.now()
    )
    await backend.repo.home_opened(
        user="UHOME", now=clock.now(), intents=[Intent(IntentKind.HOME, None, "UHOME")]
    )

    added = (await backend.outbox())[len(before) :]
    assert [(row[0], row[3]) for row in added] == [
        ("message", "k"),
        ("message", None),
        ("message", None),
        ("home", None),
    ]


async def test_lists_filter_order_and_count_like_storage(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    repo = backend.repo
    early = await service.submit_change(
        form=low_risk_form(clock, starts_in=timedelta(days=3)), requester="UOTHER"
    )
    clock.advance(timedelta(minutes=1))
    high = await service.submit_change(
        form=change_form(clock, impact="high", services=["database"], starts_in=timedelta(days=1)),
        requester=REQUESTER,
    )
    clock.advance(timedelta(minutes=1))
    medium = await service.submit_change(
        form=change_form(clock, starts_in=timedelta(days=5)), requester=REQUESTER
    )
    await service.decide(change_id=medium.id, user="ULEAD1", decision=Decision.REJECT, reason="No")
    await service.decide(change_id=high.id, user="ULEAD1", decision=Decision.APPROVE)
    emergency = await service.declare_emergency(
        form=emergency_form(services=["kubernetes"]), requester="UDEV"
    )

    async def ids(**query: object) -> list[str]:
        return [c.id for c in await repo.list_changes(ChangeQuery(**query))]  # type: ignore[arg-type]

    assert await ids() == [emergency.id, high.id, early.id, medium.id]  # by start
    assert await ids(requester=REQUESTER) == [medium.id, high.id]  # my own: newest first
    assert await ids(requester=REQUESTER, starts_from=clock.now()) == [high.id, medium.id]
    assert await ids(statuses=(Status.PENDING_APPROVAL, Status.REJECTED)) == [high.id, medium.id]
    assert await ids(risks=(Risk.LOW,)) == [early.id]
    assert await ids(post_states=(PostState.PENDING,)) == [emergency.id]
    assert await ids(starts_before=early.draft.starts_at) == [emergency.id, high.id]
    assert await ids(ends_after=early.draft.ends_at) == [medium.id]
    assert await ids(ends_before=high.draft.ends_at) == [emergency.id]
    assert await ids(limit=2, offset=1) == [high.id, early.id]
    assert await ids(limit=0) == []
    assert await repo.count_changes(ChangeQuery(limit=1, offset=3)) == 4
    assert await repo.count_changes(ChangeQuery(requester=REQUESTER, statuses=(Status.REJECTED,))) == 1

    with_approvals = await repo.list_changes(ChangeQuery(statuses=(Status.PENDING_APPROVAL,)))
    without = await repo.list_changes(ChangeQuery(statuses=(Status.PENDING_APPROVAL,), with_approvals=False))
    assert [len(c.approvals) for c in with_approvals] == [1]
    assert [(len(c.approvals), c.audit, c.review) for c in without] == [(0, (), None)]
    freezes, others = await repo.schedule_context(
        start=clock.now(), end=clock.now() + timedelta(days=2), others=ChangeQuery(ends_after=clock.now())
    )
    assert (freezes, [c.id for c in others]) == ([], await ids(ends_after=clock.now()))


async def test_a_card_read_carries_only_the_card_audit(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    emergency = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.assign_on_call(change_id=emergency.id, users=["UONCALL"], source="pagerduty", reason=None)

    cards = await backend.repo.get_changes([emergency.id, "CR-2026-0404"])
    full = await backend.repo.get_change(emergency.id, history=True)

    assert list(cards) == [emergency.id]
    assert [e.action for e in cards[emergency.id].audit] == [AuditAction.ON_CALL_RESOLVED]
    assert full is not None and len(full.audit) == 4


async def test_cron_periods_run_once(backend: Backend, service: ChangeService, clock: FakeClock) -> None:
    repo = backend.repo
    entry = AuditEntry("changebot", AuditAction.DIGEST_POSTED, clock.now(), {})
    intent = Intent(IntentKind.MESSAGE, None, "CCHANGES", None, dedupe_key="digest:x")

    first = await repo.claim_job_run(
        job="digest", period="d1", now=clock.now(), audit=[entry], intents=[intent]
    )
    again = await repo.claim_job_run(
        job="digest", period="d1", now=clock.now(), audit=[entry], intents=[intent]
    )
    other = await repo.claim_job_run(job="digest", period="d2", now=clock.now(), audit=[], intents=[])
    baseline_ran = await repo.record_first_job_run(job="digest", period="d3", now=clock.now())
    baseline_new = await repo.record_first_job_run(job="cab", period="w1", now=clock.now())
    baseline_twice = await repo.record_first_job_run(job="cab", period="w2", now=clock.now())
    claimed_after_baseline = await repo.claim_job_run(
        job="cab", period="w1", now=clock.now(), audit=[], intents=[]
    )

    assert (first, again, other) == (True, False, True)
    assert (baseline_ran, baseline_new, baseline_twice, claimed_after_baseline) == (False, True, False, False)
    assert [row[:3] for row in await backend.audit()] == [(None, "changebot", "digest_posted")]
    assert [row[3] for row in await backend.outbox()] == ["digest:x"]


async def test_reviews_are_written_once_and_counted(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    repo = backend.repo
    first = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)
    second = await service.submit_change(
        form=low_risk_form(clock, services=["database"]), requester=REQUESTER
    )
    for change, due in ((second, timedelta(hours=5)), (first, timedelta(hours=10))):
        review = Review(clock.now(), clock.now() + due, "asked")
        assert await repo.update_change(
            change_id=change.id,
            expected_version=change.version,
            update=ChangeUpdate(at=clock.now(), request_review=review, caused_incident="INC-1"),
            audit=[],
            intents=[],
        )
    clock.advance(timedelta(hours=6))

    none = await repo.submit_review(
        change_id="CR-2026-0404", user=REQUESTER, answers={}, now=clock.now(), audit=[], intents=[]
    )
    done = await repo.submit_review(
        change_id=second.id,
        user=REQUESTER,
        answers={"result": "ok", "n": (1,)},
        now=clock.now(),
        audit=[],
        intents=[],
    )
    twice = await repo.submit_review(
        change_id=second.id,
        user=REQUESTER,
        answers={"result": "again"},
        now=clock.now(),
        audit=[],
        intents=[],
    )

    assert (none, done, twice) == (False, True, False)
    stored = await repo.get_change(second.id)
    assert stored is not None and stored.review is not None
    assert (stored.review.submitted_by, stored.review.answers) == (REQUESTER, {"result": "ok", "n": [1]})
    assert await repo.overdue_reviews(now=clock.now() + timedelta(days=1)) == [first.id]
    assert await repo.review_counts(
        start=clock.now() - timedelta(days=1), end=clock.now() + timedelta(days=1)
    ) == (2, 0)
    assert await repo.caused_incidents([first.id, "CR-2026-0404", second.id]) == [first.id, second.id]


async def test_a_failed_create_leaves_no_trace(
    backend: Backend, service: ChangeService, clock: FakeClock
) -> None:
    draft = ChangeDraft(
        title="Broken",
        category=Category.NORMAL,
        impact=Impact.LOW,
        likelihood=Likelihood.LOW,
        services=("api-server",),
        starts_at=clock.now() + timedelta(days=1),
        ends_at=clock.now() + timedelta(days=1, hours=1),
        description="x",
    )
    new = NewChange(draft, Risk.LOW, Status.APPROVED, REQUESTER, clock.now(), ())

    def broken(change_id: str) -> list[Intent]:
        raise RuntimeError(f"no intents for {change_id}")

    with pytest.raises(RuntimeError):
        await backend.repo.create_change(new, audit=[], intents=broken)
    change = await service.submit_change(form=low_risk_form(clock), requester=REQUESTER)

    assert change.id == "CR-2026-0001"
    assert await backend.repo.count_changes(ChangeQuery()) == 1
    assert len(await backend.outbox()) == 2
