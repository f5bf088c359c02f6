"""The daily change-calendar digest and `/change calendar`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domain.enums import Status
from scheduler.jobs import DIGEST_JOB
from tests.support.flows import digests
from tests.support.harness import Harness
from tests.support.slack_requests import change_form_state


async def file_at(harness: Harness, title: str, start: datetime, **extra: object) -> None:
    fields = harness.form(
        title=title, starts_at=int(start.timestamp()), ends_at=int(start.timestamp()) + 3600, **extra
    )
    assert await harness.submit("change_new", change_form_state(**fields), user="UREQ") == {}


async def test_digest_posts_once_at_the_policy_time(harness: Harness) -> None:
    service = harness.bot.context.service
    now = harness.clock.now()  # 07:00 UTC = 07:00 in London in November
    await file_at(harness, "Tomorrow's upgrade", now + timedelta(days=1), impact="low", likelihood="low")
    await file_at(harness, "Needs a lead", now + timedelta(days=2))
    await file_at(harness, "Next month", now + timedelta(days=30), impact="low", likelihood="low")
    await file_at(harness, "Running late", now + timedelta(minutes=1), impact="low", likelihood="low")
    await harness.click("change_start", "CR-2026-0004", user="UREQ")
    assert not await service.run_digest()  # 07:00: not yet
    harness.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    assert await service.run_digest()
    assert not await service.run_digest()  # once a day, however often asked
    await harness.settle()
    [digest] = digests(harness)
    assert "Change calendar for Mon 23 Nov" in digest
    assert "Tomorrow's upgrade" in digest and "Needs a lead" in digest and "Next month" not in digest
    assert "Scheduled* (3)" in digest and "*Mon 23 Nov*" in digest and "*Tue 24 Nov*" in digest
    # each CR once, in its state, on its day: no second listing under "waiting" or "in progress"
    assert all(digest.count(title) == 1 for title in ("Tomorrow's upgrade", "Needs a lead", "Running late"))
    assert "*Also" not in digest
    assert ":rotating_light: overdue" in digest and "Running late" in digest  # its window ended at 08:01
    assert "owner <@UREQ>" in digest and "api-server" in digest and " 1 h " in digest
    audit_days = [
        e for e in (await harness.change("CR-2026-0001")).audit if e.action.value == "digest_posted"
    ]
    assert audit_days == []  # the digest's audit line belongs to no single CR
    harness.clock.set(datetime(2026, 11, 23, 15, 1, tzinfo=UTC))
    assert not await service.run_digest()


async def test_digest_missed_during_downtime_is_caught_up_at_start_only_within_grace(
    harness: Harness,
) -> None:
    service = harness.bot.context.service
    harness.clock.set(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))  # down since before 09:00, back at 14:00
    await harness.bot.start(run_scheduler=False)
    await harness.settle()
    assert len(digests(harness)) == 1
    harness.clock.set(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # back at 16:00: too late for today's
    assert not await service.run_digest()


async def test_digest_follows_local_time_across_dst(harness: Harness) -> None:
    service = harness.bot.context.service
    harness.clock.set(datetime(2026, 3, 29, 7, 59, tzinfo=UTC))  # 08:59 BST on the spring-forward day
    assert not await service.run_digest()
    harness.clock.set(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # 09:00 BST
    assert await service.run_digest()
    harness.clock.set(datetime(2026, 10, 25, 8, 30, tzinfo=UTC))  # 08:30 GMT after falling back
    assert not await service.run_digest()
    harness.clock.set(datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    assert await service.run_digest()


async def test_the_cron_job_is_registered_in_the_policy_time_zone(harness: Harness) -> None:
    job = harness.bot.scheduler.get_job(DIGEST_JOB)
    assert job is not None
    summer = job.trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    winter = job.trigger.get_next_fire_time(None, datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert summer.astimezone(UTC).hour == 8 and winter.astimezone(UTC).hour == 9


async def test_calendar_command(harness: Harness) -> None:
    now = harness.clock.now()
    await file_at(harness, "Later today", now + timedelta(hours=3), impact="low", likelihood="low")
    await file_at(harness, "In five days", now + timedelta(days=5), impact="low", likelihood="low")
    today = json.dumps((await harness.command("calendar", user="UREQ"))["blocks"])
    assert "Later today" in today and "In five days" not in today
    week = json.dumps((await harness.command("calendar week", user="UREQ"))["blocks"])
    assert "Later today" in week and "In five days" in week
    day = (now + timedelta(days=5)).date().isoformat()
    on_day = json.dumps((await harness.command(f"calendar {day}", user="UREQ"))["blocks"])
    assert "In five days" in on_day and "Later today" not in on_day
    bogus = json.dumps((await harness.command("calendar someday", user="UREQ"))["blocks"])
    assert "Which days?" in bogus
    assert (await harness.change("CR-2026-0001")).status is Status.APPROVED


async def test_the_calendar_keeps_ended_changes_on_their_day_and_a_past_day_shows_what_happened(
    harness: Harness,
) -> None:
    now = harness.clock.now()  # Mon 23 Nov 07:00
    await file_at(harness, "Went fine <!channel>", now + timedelta(minutes=5), impact="low", likelihood="low")
    await file_at(
        harness, "Broke", now + timedelta(minutes=10), impact="low", likelihood="low", services=["database"]
    )
    await file_at(harness, "Needs a lead", now + timedelta(days=2))
    await file_at(harness, "Cancelled one", now + timedelta(hours=3), impact="low", likelihood="low")
    await harness.command("cancel CR-2026-0004 not needed", user="UREQ")
    for change_id in ("CR-2026-0001", "CR-2026-0002"):
        await harness.click("change_start", change_id, user="UREQ")
    await harness.click("change_complete", "CR-2026-0001", user="UREQ")
    await harness.click("change_close", "CR-2026-0001", user="UREQ")
    await harness.click("change_fail", "CR-2026-0002", user="UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    notes = {"notes": {"notes": {"value": "Timeouts"}}}
    assert await harness.submit("change_progress_notes", notes, user="UREQ", private_metadata=meta) == {}
    assert (await harness.change("CR-2026-0001")).status is Status.CLOSED

    today = json.dumps((await harness.command("calendar", user="UREQ"))["blocks"])
    assert "Went fine &lt;!channel&gt;" in today and "<!channel>" not in today
    assert ":lock: Closed" in today and ":x: Failed" in today and "Cancelled one" not in today
    assert "Also waiting for approval* (1)" in today and today.count("Needs a lead") == 1
    week = json.dumps((await harness.command("calendar week", user="UREQ"))["blocks"])
    assert week.count("Needs a lead") == 1 and "*Also" not in week

    harness.clock.set(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    past = json.dumps((await harness.command("calendar 2026-11-23", user="UREQ"))["blocks"])
    assert "What happened* (2)" in past and "Changes on Mon 23 Nov 2026" in past
    assert ":lock: Closed" in past and ":x: Failed" in past and "Broke" in past
    assert "Needs a lead" not in past and "Cancelled one" not in past  # not today's open items either
