"""The weekly report: posted once a week at the policy's time, with its chart and its
trends against the week before; the scheduler runs it in the policy's time zone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.jobs import WEEKLY_REPORT_JOB
from tests.support.flows import approved, rendered, to_window
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

WEEKLY_POLICY = TEST_POLICY + 'report:\n  weekly: {day: mon, at: "09:00"}\n'


@pytest.fixture
def policy_text() -> str:
    return WEEKLY_POLICY


async def test_the_weekly_report_is_posted_once_with_its_trends_and_chart(harness: Harness) -> None:
    await approved(harness, title="Gateway <!here> release")  # Mon 23 Nov, 09:00
    await to_window(harness)
    await harness.click("change_start", "CR-2026-0001", user="UREQ")
    await harness.click("change_complete", "CR-2026-0001", user="UREQ")
    service = harness.bot.context.service
    harness.clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))  # the next Monday, 09:00 in London
    assert await service.run_weekly_report()
    assert not await service.run_weekly_report()
    await harness.settle()
    [post] = [c for c in harness.posts_to("CCHANGES") if "Weekly change report" in rendered(c)]
    text = post.params["text"] + json.dumps(post.params["blocks"], ensure_ascii=False)
    assert "Weekly change report, Mon 23 Nov – Sun 29 Nov 2026" in text
    assert "Changes implemented: *1*" in text and "Against Mon 16 Nov – Sun 22 Nov 2026" in text
    assert "Changes implemented: *1* ↑ +1 (was 0)" in text and "Success rate: *100.0%* (was no data)" in text
    [chart] = harness.slack.files.values()
    assert chart["data"].startswith(b"\x89PNG\r\n\x1a\n")
    harness.clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC) + timedelta(hours=1))
    assert not await service.run_weekly_report()


async def test_the_weekly_job_runs_in_the_policy_time_zone(harness: Harness) -> None:
    job = harness.bot.scheduler.get_job(WEEKLY_REPORT_JOB)
    assert job is not None
    summer = job.trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))  # a Wednesday
    winter = job.trigger.get_next_fire_time(None, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    assert summer.astimezone(UTC) == datetime(2026, 7, 6, 8, 0, tzinfo=UTC)  # Monday 09:00 BST
    assert winter.astimezone(UTC) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 09:00 GMT
