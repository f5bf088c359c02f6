"""Replays and double submits act once: the identical signed request sent again, or the
same view submitted twice (a double click), gets the first answer and no second effect."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.replay import request_key
from domain.errors import ChangeNotFound
from handlers.commands import ANSWERS, CHANGES_STATE, MODAL_COMMANDS, READS_ONLY
from storage.replays import ProcessedRequests, StoredAnswer
from tests.support.flows import (
    CR,
    approved,
    emergency_state,
    rendered,
    to_window,
)
from tests.support.harness import Db, Harness
from tests.support.pagerduty_fake import PD_POLICY, ROUTING_KEY, PagerDutyFake
from tests.support.slack_requests import (
    block_action,
    change_form_state,
    command_body,
    interaction_body,
    sign,
    view_submission,
)

FORM = "application/x-www-form-urlencoded"


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


async def send(harness: Harness, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    response = await harness.http.post("/slack/events", data=body, headers={"Content-Type": FORM, **headers})
    return response.status, await response.text()


async def twice(harness: Harness, body: bytes, *, together: bool) -> list[tuple[int, str]]:
    """The identical signed request, one after the other or both at once."""
    headers = sign(body, int(harness.clock.now().timestamp()))
    if together:
        answers = list(await asyncio.gather(send(harness, body, headers), send(harness, body, headers)))
    else:
        answers = [await send(harness, body, headers), await send(harness, body, headers)]
    await harness.settle()
    return answers


def emergency_body(*, view_id: str = "VEMERGENCY1") -> bytes:
    payload = view_submission("change_emergency", emergency_state(), user="UDEV", view_id=view_id)
    return interaction_body(payload)


async def assert_one_emergency(harness: Harness) -> None:
    await harness.tick()
    assert (await harness.change(CR)).draft.title == "Roll back checkout 4.2"
    with pytest.raises(ChangeNotFound):
        await harness.change("CR-2026-0002")
    assert len(harness.posts_to("UALICE")) == 1  # the on-call is paged once
    actions = [e.action.value for e in (await harness.change(CR)).audit]
    assert actions.count("submitted") == actions.count("emergency_declared") == 1
    assert len([c for c in harness.posts_to("CINCIDENTS") if "On call for" in rendered(c)]) == 1


@pytest.mark.parametrize("together", [False, True], ids=["in-turn", "concurrent"])
async def test_a_replayed_emergency_submit_files_and_pages_once(
    harness: Harness,
    pagerduty: PagerDutyFake,
    together: bool,
) -> None:
    first, second = await twice(harness, emergency_body(), together=together)
    assert first == second and first[0] == 200
    await assert_one_emergency(harness)


async def test_a_double_clicked_emergency_submit_files_once(
    harness: Harness,
    pagerduty: PagerDutyFake,
) -> None:
    """Two clicks: two requests (new timestamp, new signature), the same view."""
    body = emergency_body()
    now = int(harness.clock.now().timestamp())
    answers = await asyncio.gather(
        send(harness, body, sign(body, now)), send(harness, body, sign(body, now + 1))
    )
    assert answers[0] == answers[1]
    await harness.settle()
    await assert_one_emergency(harness)
    # Another modal with the same content is another emergency.
    await send(
        harness, emergency_body(view_id="VEMERGENCY2"), sign(emergency_body(view_id="VEMERGENCY2"), now)
    )
    await harness.settle()
    assert (await harness.change("CR-2026-0002")).draft.title == "Roll back checkout 4.2"


@pytest.mark.parametrize("together", [False, True], ids=["in-turn", "concurrent"])
async def test_a_replayed_incident_link_acts_once(harness: Harness, together: bool) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_complete", CR, user="UREQ")
    posts_before = len(harness.posts_to("CCHANGES"))
    body = command_body(f"incident {CR} INC-981", user="UREQ", trigger_id="trig-incident")
    first, second = await twice(harness, body, together=together)
    assert first == second and "counts as a change failure" in first[1]
    change = await harness.change(CR)
    assert [e.action.value for e in change.audit].count("incident_linked") == 1
    assert [e.action.value for e in change.audit].count("review_requested") == 1
    assert len(harness.posts_to("CCHANGES")) - posts_before == 1


async def test_a_replayed_report_posts_once_but_asking_again_posts_again(harness: Harness) -> None:
    body = command_body("report month", user="UREQ", trigger_id="trig-report")
    first, second = await twice(harness, body, together=True)
    assert first == second and "Change report" in first[1]
    reports = [c for c in harness.posts_to("CCHANGES") if "Change report" in rendered(c)]
    assert len(reports) == 1 and len(harness.slack.files) == 1
    await harness.command("report month", user="UREQ")  # a person asking again is not a replay
    reports = [c for c in harness.posts_to("CCHANGES") if "Change report" in rendered(c)]
    assert len(reports) == 2


async def test_a_replayed_freeze_start_and_cancel_act_once(harness: Harness) -> None:
    await harness.file_change()
    body = command_body(f"cancel {CR} not needed", user="UREQ", trigger_id="trig-cancel")
    first, second = await twice(harness, body, together=False)
    assert first == second and "is cancelled" in first[1]
    assert [e.action.value for e in (await harness.change(CR)).audit].count("cancelled") == 1
    announcements = len(harness.posts_to("CCHANGES"))
    body = command_body("freeze start quarter close", user="UMGR1", trigger_id="trig-freeze")
    first, second = await twice(harness, body, together=True)
    assert first == second and "freeze is on" in first[1]
    assert len(harness.posts_to("CCHANGES")) - announcements == 1


async def test_a_form_answered_with_errors_is_answered_the_same_when_replayed(harness: Harness) -> None:
    payload = view_submission("change_emergency", emergency_state(title=""), user="UDEV", view_id="VBAD")
    first, second = await twice(harness, interaction_body(payload), together=False)
    assert first == second and json.loads(first[1])["response_action"] == "errors"
    fixed = view_submission("change_emergency", emergency_state(), user="UDEV", view_id="VBAD")
    await harness.post(interaction_body(fixed), content_type=FORM)
    await harness.tick()
    assert (await harness.change(CR)).draft.title == "Roll back checkout 4.2"


async def test_keys_outlive_the_signature_window_then_go(harness: Harness) -> None:
    """A key is kept while its request could still pass the signature check."""
    body = command_body("report month", user="UREQ", trigger_id="trig-old")
    await twice(harness, body, together=False)
    harness.clock.advance(timedelta(minutes=20))
    await harness.command("report week", user="UREQ")  # any request prunes what expired
    async with harness.bot.engine.connect() as connection:
        from sqlalchemy import text

        keys = (await connection.execute(text("SELECT count(*) FROM processed_request"))).scalar()
    assert keys == 1


@given(st.binary(max_size=300), st.text(max_size=80))
def test_any_body_has_a_key_or_none_and_never_raises(body: bytes, signature: str) -> None:
    key = request_key(body, signature)
    assert key is None or len(key) <= 100


async def test_a_double_clicked_change_form_files_one_change(harness: Harness) -> None:
    payload = view_submission("change_new", change_form_state(**harness.form()), user="UREQ", view_id="VFORM")
    body = interaction_body(payload)
    now = int(harness.clock.now().timestamp())
    first, second = await asyncio.gather(
        send(harness, body, sign(body, now)), send(harness, body, sign(body, now + 1))
    )
    assert first == second == (200, "")
    await harness.settle()
    assert (await harness.change(CR)).draft.title == "Upgrade the API gateway"
    with pytest.raises(ChangeNotFound):
        await harness.change("CR-2026-0002")
    assert len([c for c in harness.posts_to("CCHANGES") if str(c.params.get("text")).startswith(CR)]) == 1


async def test_a_double_clicked_reschedule_moves_and_tells_once(harness: Harness) -> None:
    await approved(harness)
    await harness.command(f"reschedule {CR}", user="UREQ")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    start = int((harness.clock.now() + timedelta(days=5)).timestamp())
    state = {
        "starts_at": {"starts_at": {"selected_date_time": start}},
        "ends_at": {"ends_at": {"selected_date_time": start + 600}},
    }
    payload = view_submission(
        "change_reschedule", state, user="UREQ", private_metadata=view["private_metadata"], view_id="VMOVE"
    )
    body = interaction_body(payload)
    now = int(harness.clock.now().timestamp())
    await asyncio.gather(send(harness, body, sign(body, now)), send(harness, body, sign(body, now + 2)))
    await harness.settle()
    actions = [e.action.value for e in (await harness.change(CR)).audit]
    assert actions.count("rescheduled") == 1


@pytest.mark.parametrize("together", [False, True], ids=["in-turn", "concurrent"])
async def test_replayed_clicks_act_once_through_the_domains_guards(harness: Harness, together: bool) -> None:
    """Clicks are not claimed at the door (no database round trip before their ack): a
    repeated Approve or Start is refused by the change's state and version guard instead."""
    await approved(harness)
    change = await harness.change(CR)
    if change.status.value == "pending_approval":
        approve = interaction_body(block_action("change_approve", CR, user="ULEAD1"))
        await twice(harness, approve, together=together)
        await harness.settle()
        change = await harness.change(CR)
        assert [e.action.value for e in change.audit].count("approval_recorded") == 1
    await to_window(harness)
    start = interaction_body(block_action("change_start", CR, user="UREQ"))
    await twice(harness, start, together=together)
    await harness.settle()
    actions = [e.action.value for e in (await harness.change(CR)).audit]
    assert actions.count("started") == 1


def test_every_change_word_says_whether_it_changes_state() -> None:
    """The door claims only the words that change state: a new word must be classified."""
    assert set(MODAL_COMMANDS) | set(ANSWERS) == CHANGES_STATE | READS_ONLY
    assert not CHANGES_STATE & READS_ONLY
    assert request_key(command_body("list pending", user="U1"), "v0=x") is None
    assert request_key(command_body("cancel CR-2026-0001", user="U1"), "v0=x") is not None
    assert request_key(interaction_body(block_action("change_approve", CR, user="U1")), "v0=x") is None


async def test_concurrent_claims_share_one_insert_and_each_key_wins_once(db: Db) -> None:
    """A burst of submissions claims in one statement; a key twice in a burst wins once."""
    store = ProcessedRequests(db.sessions)
    now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    keys = ["view:a", "view:a", "view:b", "view:a", "sig:c", "view:b"]
    firsts = await asyncio.gather(*(store.claim(k, now=now) for k in keys))
    assert sorted(k for k, first in zip(keys, firsts, strict=True) if first) == ["sig:c", "view:a", "view:b"]
    assert sum(1 for s in db.statements if "INSERT INTO processed_request" in s) <= 2
    await asyncio.gather(*(store.finish(k, StoredAnswer(200, "text/plain", k)) for k in ("view:a", "view:b")))
    assert await store.answer("view:b") == StoredAnswer(200, "text/plain", "view:b")
    assert await store.answer("sig:c") is None  # still being handled
    assert await store.claim("view:a", now=now) is False
