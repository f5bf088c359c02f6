"""Notices people read, through ChangeService on the in-memory repository: the full timeline
by default, the stakeholders' template, DMs held over quiet hours, freezes with an end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.clock import FakeClock
from domain.intents import IntentKind
from domain.messages import FreezeChanged, FreezeCovers, StakeholderNotice, TimelineNotice
from domain.model import SYSTEM_ACTOR, AuditAction
from domain.policy_loader import parse_policy
from domain.service import ChangeService
from tests.support.change_forms import CTO, IMPLEMENTER, REQUESTER, emergency_form, low_risk_form
from tests.support.memory_repository import MemoryChangeRepository, MemoryDirectory, MemoryNotifier
from tests.support.policy_fixture import MANAGERS, TEST_POLICY

LONDON = ZoneInfo("Europe/London")
# One notice that DMs the implementer a day ahead, so quiet hours have something to hold.
DM_A_DAY_AHEAD = """
  notices:
    - {id: t_minus_24h, at: -24h, audience: [thread, implementer], text: "Tomorrow."}
    - {id: t_0, at: 0, audience: [thread, implementer], text: "Now.", buttons: implementation}
"""
QUIET = 'quiet_hours: {start: "20:00", end: "08:00", unless_within: 2h}\n'


def quiet_service(
    repo: MemoryChangeRepository, clock: FakeClock, directory: MemoryDirectory
) -> ChangeService:
    text = TEST_POLICY.replace("timeline:\n", "timeline:" + DM_A_DAY_AHEAD, 1) + QUIET
    policy = parse_policy(text)
    return ChangeService(
        repository=repo, directory=directory, notifier=MemoryNotifier(), clock=clock, policy=policy
    )


async def test_the_default_timeline_is_the_documents_full_one(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    keys = [n.key for n in await repo.notices(change.id)]
    assert keys == ["t_minus_24h", "t_minus_1h", "t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m", "overrun"]
    clock.set(change.draft.starts_at - timedelta(hours=24))
    await service.process_due_notices()
    sent = [(i.channel, type(i.message).__name__) for i in repo.intents_for(change.id)][-2:]
    assert sent == [("CCHANGES", "TimelineNotice"), ("CSTAKE", "StakeholderNotice")]
    told = repo.intents_for(change.id)[-1].message
    assert isinstance(told, StakeholderNotice) and told.key == "t_minus_24h" and not told.late


async def test_a_dm_due_at_night_waits_for_the_readers_morning(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    directory = MemoryDirectory({"SMANAGERS": MANAGERS})
    directory.zones[IMPLEMENTER] = "America/New_York"
    service = quiet_service(repo, clock, directory)
    start = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # T-24h: 04:00 UTC, 23:00 in New York
    form = low_risk_form(clock, implementer=IMPLEMENTER, starts_in=start - clock.now())
    change = await service.submit_change(form=form, requester=REQUESTER)

    clock.set(start - timedelta(hours=24))
    await service.process_due_notices()
    [thread, dm] = [e for e in repo.outbox if e.change_id == change.id][-2:]
    assert (thread.channel, thread.due_at) == ("CCHANGES", clock.now())  # channels are never held
    assert dm.channel == IMPLEMENTER and isinstance(dm.intent.message, TimelineNotice)
    assert dm.due_at == datetime(2026, 11, 25, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    assert (await repo.notices(change.id))[0].state == "sent"  # settled once; the DM waits in the outbox

    clock.set(start)  # T-0 at 23:00 New York time: the change starts now, so it goes at once
    await service.process_due_notices()
    assert repo.outbox[-1].channel == IMPLEMENTER and repo.outbox[-1].due_at == clock.now()


async def test_without_a_known_zone_the_policys_is_used_and_emergencies_never_wait(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = quiet_service(repo, clock, MemoryDirectory({"SMANAGERS": MANAGERS}))
    start = datetime(2026, 11, 26, 22, 30, tzinfo=LONDON)
    form = low_risk_form(clock, implementer=IMPLEMENTER, starts_in=start - clock.now())
    change = await service.submit_change(form=form, requester=REQUESTER)
    clock.set(start - timedelta(hours=24))
    await service.process_due_notices()
    assert repo.outbox[-1].due_at == datetime(2026, 11, 26, 8, 0, tzinfo=LONDON)

    clock.set(datetime(2026, 11, 27, 2, 0, tzinfo=LONDON))
    emergency = await service.declare_emergency(form=emergency_form(), requester="UDEV")
    await service.process_due_notices()
    held = [e for e in repo.outbox if e.change_id == emergency.id and e.intent.not_before is not None]
    assert held == [] and change.id != emergency.id


async def test_a_freeze_with_an_end_tells_the_owners_and_ends_itself_once(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    inside = await service.submit_change(
        form=low_risk_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    later = low_risk_form(clock, starts_in=timedelta(days=20), title="After the freeze")
    after = await service.submit_change(form=later, requester=REQUESTER)
    before = len(repo.outbox)

    past, why = await service.start_freeze(user=CTO, reason="Holidays", until=clock.now().date())
    assert past is None and why is not None and "in the past" in why
    freeze, none = await service.start_freeze(user=CTO, reason="Holidays", until=date(2026, 12, 4))
    assert none is None and freeze is not None
    ends = datetime(2026, 12, 4, 0, 0, tzinfo=LONDON)
    assert freeze.ended_at == ends
    new = repo.outbox[before:]
    assert [(e.channel, e.change_id) for e in new] == [
        ("CCHANGES", None),
        (IMPLEMENTER, inside.id),
        (REQUESTER, inside.id),
        (None, inside.id),  # its card names the freeze
    ]
    assert new[-1].intent.kind is IntentKind.REFRESH_CARDS
    assert isinstance(new[1].intent.message, FreezeCovers) and new[1].intent.message.until == ends
    assert after.id not in [e.change_id for e in new]
    again, on = await service.start_freeze(user=CTO, reason="Again")
    assert again is None and on is not None and "already on" in on

    assert await service.end_due_freezes() == 0
    clock.set(ends)
    assert await service.end_due_freezes() == 1
    assert await service.end_due_freezes() == 0  # once
    refresh = repo.outbox[-1]  # the freeze leaves its card
    assert (refresh.intent.kind, refresh.change_id) == (IntentKind.REFRESH_CARDS, inside.id)
    ended = repo.outbox[-2].intent.message
    assert isinstance(ended, FreezeChanged) and ended.as_planned and ended.by == SYSTEM_ACTOR
    assert repo.audit_log[-1].entry.action is AuditAction.FREEZE_ENDED
    assert repo.audit_log[-1].entry.actor == SYSTEM_ACTOR
    fresh, _ = await service.start_freeze(user=CTO, reason="Next")
    assert fresh is not None


async def test_a_freeze_lifted_before_its_end_is_not_announced_again(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    await service.start_freeze(user=CTO, reason="Audit", until=date(2026, 11, 30))
    clock.advance(timedelta(hours=2))
    lifted, _ = await service.end_freeze(user=CTO)
    assert lifted is not None and lifted.ended_at == clock.now()
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    assert await service.end_due_freezes() == 0
    assert [i.kind for i in repo.intents] == [IntentKind.MESSAGE, IntentKind.MESSAGE]
