"""Capped lists tell the truth: `/change list` pages with the true total, and the calendar,
digest, CAB agenda and App Home say how many there really are and where the rest is.
Hundreds of CRs are seeded through the repository (one group commit), then everything is
asked through the signed HTTP door and read off the recorded Slack calls."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.model import ChangeDraft, NewChange, StepSnapshot
from domain.ports import ChangeQuery
from tests.support.harness import Db, Harness
from tests.support.slack_requests import change_form_state

LEADS = (StepSnapshot("tech_lead", 1, ("ULEAD1", "ULEAD2")),)


async def seed(
    db: Db,
    count: int,
    *,
    first_start: datetime,
    status: Status = Status.PENDING_APPROVAL,
    risk: Risk = Risk.MEDIUM,
    requester: str = "UREQ",
    title: str = "Seeded",
    every: timedelta = timedelta(minutes=10),
) -> list[str]:
    """`count` CRs `every` apart from `first_start`, stored concurrently (the repository
    batches them into a few transactions); their ids in start order."""

    def one(i: int) -> Any:
        starts = first_start + every * i
        draft = ChangeDraft(
            title=f"{title} {i:03d}",
            category=Category.NORMAL,
            impact=Impact.MEDIUM,
            likelihood=Likelihood.MEDIUM,
            services=("api-server",),
            starts_at=starts,
            ends_at=starts + timedelta(minutes=5),
            description="seeded",
        )
        change = NewChange(draft, risk, status, requester, first_start - timedelta(days=3), LEADS)
        return db.repo.create_change(change, audit=[], intents=lambda _id: [])

    made = await asyncio.gather(*(one(i) for i in range(count)))
    return [c.id for c in sorted(made, key=lambda c: (c.draft.starts_at, c.id))]


def text(answer: dict[str, Any]) -> str:
    return json.dumps(answer.get("blocks", []), ensure_ascii=False)


async def test_change_list_pages_with_the_true_total_and_the_next_command(harness: Harness, db: Db) -> None:
    ids = await seed(db, 250, first_start=harness.clock.now() + timedelta(days=1))
    first = await harness.command("list pending", user="UREQ")
    assert "Showing 1–20 of 250 · next: `/change list pending --page 2`" in text(first)
    assert ids[0] in text(first) and ids[19] in text(first) and ids[20] not in text(first)
    second = await harness.command("list pending --page 2", user="UREQ")
    assert "Showing 21–40 of 250 · next: `/change list pending --page 3`" in text(second)
    assert ids[20] in text(second) and ids[39] in text(second) and ids[19] not in text(second)
    last = await harness.command("list --page=13 pending", user="UREQ")
    assert "Showing 241–250 of 250" in text(last) and "--page 14" not in text(last)
    assert ids[-1] in text(last) and ids[239] not in text(last)
    mine = await harness.command("list --page 2", user="UREQ")  # the scope defaults to mine
    assert "Your change requests" in text(mine) and "Showing 21–40 of 250" in text(mine)
    short = await harness.command("list pending", user="UNOBODY")
    assert "Showing" in text(short)  # everyone sees the pending list
    nothing = await harness.command("list mine", user="UNOBODY")
    assert "Nothing here" in text(nothing) and "Showing" not in text(nothing)


async def test_a_page_past_the_end_and_a_bad_page_get_one_line(harness: Harness, db: Db) -> None:
    await seed(db, 45, first_start=harness.clock.now() + timedelta(days=1))
    past = await harness.command("list pending --page 4", user="UREQ")
    assert len(past["blocks"]) == 1
    assert past["blocks"][0]["text"]["text"] == (
        "There is no page 4: 45 changes make 3 pages; the last is `/change list pending --page 3`."
    )
    far = await harness.command("list pending --page 999999999", user="UREQ")
    assert "There is no page 999,999,999" in text(far) and len(far["blocks"]) == 1
    empty = await harness.command("list in-progress --page 2", user="UREQ")
    assert text(empty).count("There is no page 2: `/change list in-progress` is empty.") == 1
    for bad in ("--page 0", "--page two", "--page", "--page -1", "--page 1.5", "--page " + "9" * 40):
        answer = await harness.command(f"list pending {bad}", user="UREQ")
        assert len(answer["blocks"]) == 1, bad
        assert answer["blocks"][0]["text"]["text"] == (
            "Which page? Use a page number from 1, like `/change list pending --page 2`."
        ), bad
    bad_scope = await harness.command("list everything --page 2", user="UREQ")
    assert "List what?" in text(bad_scope) and "`in-progress`" in text(bad_scope)
    assert {c.method for c in harness.slack.calls} <= {"auth.test"}  # answered in the ack only


async def test_calendar_and_digest_show_true_totals_and_where_the_rest_is(harness: Harness, db: Db) -> None:
    now = harness.clock.now()  # Monday 23 Nov, 07:00
    await seed(db, 250, first_start=now + timedelta(days=1), title="Pending")
    await seed(
        db, 105, first_start=now - timedelta(hours=40), status=Status.IN_PROGRESS, title="Running late"
    )
    week = text(await harness.command("calendar week", user="UREQ"))
    assert "*Scheduled* (250)" in week
    assert "… and 150 more: `/change calendar 2026-11-23` for one day, or the calendar feed (ICS)" in week
    # each change once: the 100 listed by day are not listed again
    assert "*Also waiting for approval* (150)" in week and "… and 150 more: `/change list pending`" in week
    # the most urgent first: the overdue ones (all in progress), then the rest of those in progress
    assert "*Also overdue: window ended, not completed* (105)" in week
    assert "… and 5 more: `/change list overdue`" in week
    assert "*Also in progress* (5)" in week and "… and 5 more: `/change list in-progress`" in week
    running = await harness.command("list in-progress", user="UREQ")
    assert "Showing 1–20 of 105" in text(running) and "Changes in progress" in text(running)
    overdue = await harness.command("list overdue --page 6", user="UREQ")
    assert "Showing 101–105 of 105" in text(overdue)

    harness.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    assert await harness.bot.context.service.run_digest()
    await harness.settle()
    [digest] = [
        json.dumps(c.params["blocks"], ensure_ascii=False)
        for c in harness.posts_to("CCHANGES")
        if "Change calendar for" in json.dumps(c.params.get("blocks"))
    ]
    assert (
        "*Also waiting for approval* (150)" in digest and "… and 150 more: `/change list pending`" in digest
    )
    assert "*Also overdue: window ended, not completed* (105)" in digest
    assert "*Also in progress* (5)" in digest and "… and 5 more: `/change list in-progress`" in digest


async def test_cab_agenda_and_app_home_count_past_their_caps(harness: Harness, db: Db) -> None:
    thursday = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    await seed(db, 240, first_start=thursday, risk=Risk.HIGH, title="Risky")
    harness.clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # Wednesday 15:00 UTC: CAB time
    assert await harness.bot.context.service.run_cab_agenda()
    await harness.settle()
    [agenda] = [
        json.dumps(c.params["blocks"], ensure_ascii=False)
        for c in harness.posts_to("CCHANGES")
        if "CAB agenda" in json.dumps(c.params.get("blocks"))
    ]
    assert "*1. Awaiting approval* (240)" in agenda and "… and 225 more: `/change list pending`" in agenda
    assert agenda.count('"change_approve"') == 15
    assert "*2. High-risk changes in the coming week* (240)" in agenda
    high = next(b["text"]["text"] for b in json.loads(agenda) if "2. High-risk" in str(b.get("text")))
    shown = high.count("• *CR-")  # whole lines, as many as fit in one section
    assert 10 <= shown <= 20 and high.endswith(f"… and {240 - shown} more: `/change list upcoming`")

    await harness.event(
        {"type": "app_home_opened", "user": "ULEAD1", "tab": "home", "channel": "D1"}, event_id="EvHome1"
    )
    lead = json.dumps(harness.slack.home_views["ULEAD1"], ensure_ascii=False)
    # Only the first 100 open CRs are checked for the lead, so this is a lower bound.
    assert "*Waiting for you* (at least 100)" in lead
    assert "… and at least 88 more: `/change list pending`" in lead
    assert "*The next 7 days* (240)" in lead and "… and 220 more: `/change list upcoming`" in lead
    await harness.event(
        {"type": "app_home_opened", "user": "UREQ", "tab": "home", "channel": "D2"}, event_id="EvHome2"
    )
    mine = json.dumps(harness.slack.home_views["UREQ"], ensure_ascii=False)
    assert "*Your change requests* (240)" in mine and "… and 225 more: `/change list mine`" in mine


async def test_counts_are_one_count_query_matching_the_list(db: Db) -> None:
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    await seed(db, 30, first_start=start, risk=Risk.HIGH)
    await seed(db, 12, first_start=start, risk=Risk.LOW, requester="UOTHER")
    db.statements.clear()
    high = ChangeQuery(statuses=(Status.PENDING_APPROVAL,), risks=(Risk.HIGH,), limit=5)
    assert await db.repo.count_changes(high) == 30
    [statement] = [s for s in db.statements if "change_request" in s]
    assert statement.lstrip().upper().startswith("SELECT COUNT(*)")  # nothing loaded
    assert await db.repo.count_changes(ChangeQuery(requester="UOTHER")) == 12
    pages = [await db.repo.list_changes(ChangeQuery(risks=(Risk.HIGH,), limit=7, offset=o)) for o in (0, 7)]
    everything = await db.repo.list_changes(ChangeQuery(risks=(Risk.HIGH,), limit=100))
    assert [c.id for c in pages[0] + pages[1]] == [c.id for c in everything[:14]]


async def test_a_capped_ics_feed_says_how_many_it_left_out(harness: Harness, db: Db) -> None:
    await seed(db, 5003, first_start=harness.clock.now() + timedelta(hours=1), every=timedelta(minutes=30))
    token = await harness.bot.context.gateway.repository.feed_token(now=harness.clock.now())
    response = await harness.http.get(f"/calendar.ics?token={token}")
    assert response.status == 200
    calendar = icalendar.Calendar.from_ical(await response.read())
    changes = [e for e in calendar.walk("VEVENT") if str(e["uid"]).startswith("CR-")]
    assert len(changes) == 5000
    assert str(calendar["x-wr-caldesc"]) == (
        "Only the 5,000 earliest of 5,003 changes in this period; /change calendar in Slack shows any day."
    )


async def test_the_overlap_warning_counts_the_conflicts_it_does_not_list(harness: Harness, db: Db) -> None:
    fields = harness.form()  # api-server, two days ahead, for an hour
    await seed(
        db, 13, first_start=datetime.fromtimestamp(fields["starts_at"], UTC), every=timedelta(minutes=1)
    )
    answer = await harness.submit(
        "change_new", change_form_state(**fields), user="UREQ", confirm_conflicts=False
    )
    warning = answer["view"]["blocks"][0]["text"]["text"]
    assert warning.count("• *CR-") == 10 and "… and 3 more overlapping changes." in warning
