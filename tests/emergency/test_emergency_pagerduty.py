"""Emergencies with PagerDuty: the on-call from a real HTTPS fake, its failures, and
Change Events for every change's start and end, through the outbox."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from domain.enums import Status
from tests.support.flows import (
    CR,
    declare,
    rendered,
)
from tests.support.harness import Harness
from tests.support.outbox_rows import store_as_before
from tests.support.pagerduty_fake import PD_POLICY, ROUTING_KEY, PagerDutyFake


@pytest.fixture
def settings_overrides(pagerduty: PagerDutyFake) -> dict[str, Any]:
    return {
        "pagerduty_api_token": "pd-token",
        "pagerduty_api_url": pagerduty.base_url,
        "pagerduty_events_url": pagerduty.base_url,
        "pagerduty_routing_key": ROUTING_KEY,
    }


@pytest.fixture
def policy_text() -> str:
    return PD_POLICY


async def test_the_level_one_on_call_gets_the_go_ahead_card(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    await declare(harness)
    change = await harness.change(CR)
    assert change.steps[0].members == ("UALICE",)
    card = harness.posts_to("UALICE")[0]
    assert "change_approve" in rendered(card) and "from PagerDuty" in rendered(card)
    assert not harness.posts_to("UBOB") and not harness.posts_to("UFALLBACK")
    thread = [c for c in harness.posts_to("CINCIDENTS") if "On call for" in rendered(c)]
    assert "<@UALICE>" in rendered(thread[0]) and "go-ahead is needed" in rendered(thread[0])
    assert pagerduty.requests_to("/oncalls")[0].headers["Authorization"] == "Token token=pd-token"
    await harness.click("change_approve", CR, user="UALICE")
    assert (await harness.change(CR)).status is Status.APPROVED


@pytest.mark.parametrize("fault", ["down", "slow", "500", "empty", "unmapped"])
async def test_fallback_users_get_it_within_5_seconds_and_the_card_says_why(
    harness: Harness, pagerduty: PagerDutyFake, fault: str
) -> None:
    if fault == "down":
        await pagerduty.go_down()
    elif fault == "slow":
        pagerduty.delay(10)
    elif fault == "500":
        pagerduty.fail_with(500, times=5)
    elif fault == "empty":
        pagerduty.oncalls.clear()
    else:
        harness.slack.users = {}
    started = time.monotonic()
    await declare(harness)
    assert time.monotonic() - started < 5
    card = harness.posts_to("UFALLBACK")[0]
    reasons = {
        "down": "could not reach PagerDuty",
        "slow": "did not answer within",
        "500": "answered 500",
        "empty": "nobody on call",
        "unmapped": "maps to a Slack user",
    }
    assert "fallback" in rendered(card) and reasons[fault] in rendered(card)
    assert (await harness.change(CR)).steps[0].members == ("UFALLBACK",)
    pagerduty.delay(0)


async def test_change_events_for_start_and_completion(harness: Harness, pagerduty: PagerDutyFake) -> None:
    await declare(harness)
    await harness.click("change_approve", CR, user="UALICE")
    await harness.click("change_start", CR, user="UDEV")
    pagerduty.fail_with(500, times=2, path="/v2/change/enqueue")
    await harness.click("change_complete", CR, user="UDEV")
    events = pagerduty.change_events
    assert [e["payload"]["custom_details"]["status"] for e in events] == ["in_progress", "completed"]
    first = events[0]
    assert first["routing_key"] == ROUTING_KEY
    assert first["payload"]["source"] == "changebot"
    assert first["payload"]["summary"].startswith(f"{CR} Roll back checkout 4.2: in progress")
    assert datetime.fromisoformat(first["payload"]["timestamp"]).tzinfo is not None
    assert first["payload"]["custom_details"]["severity"] == "P1"
    assert first["links"][0]["href"].startswith("https://") and CR in first["links"][0]["text"]


async def test_change_events_for_every_change_not_only_emergencies(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    start = int(harness.clock.now().timestamp()) + 3600
    fields = harness.form(impact="low", likelihood="low", starts_at=start, ends_at=start + 600)
    from tests.support.slack_requests import change_form_state

    assert await harness.submit("change_new", change_form_state(**fields), user="UREQ") == {}
    await harness.click("change_fail", CR, user="UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    await harness.submit(
        "change_progress_notes",
        {"notes": {"notes": {"value": "Disk full"}}},
        user="UREQ",
        private_metadata=meta,
    )
    [event] = pagerduty.change_events
    assert event["payload"]["custom_details"]["status"] == "failed"
    assert event["payload"]["custom_details"]["notes"] == "Disk full"


async def test_a_change_event_row_stored_by_the_previous_version_is_sent(
    harness: Harness, pagerduty: PagerDutyFake
) -> None:
    await declare(harness)
    at = harness.clock.now()
    payload = {"status": "completed", "at": at.isoformat(), "by": "UDEV", "notes": "All green"}
    await store_as_before(harness, [("pd_change_event", CR, None, payload)])  # no "template" then
    await harness.settle()
    [event] = pagerduty.change_events
    assert event["payload"]["summary"] == f"{CR} Roll back checkout 4.2: completed"
    assert datetime.fromisoformat(event["payload"]["timestamp"]) == at
    details = event["payload"]["custom_details"]
    assert (details["status"], details["by"], details["notes"]) == ("completed", "UDEV", "All green")
