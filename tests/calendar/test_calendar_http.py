"""Windows, blackouts, freezes and conflicts in the Slack form; the ICS feed; App Home."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icalendar
import pytest

from domain.enums import Status
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import change_form_state

CALENDAR_POLICY = (
    TEST_POLICY
    + """windows:
  normal:
    - {days: [tue, wed, thu], start: "10:00", end: "16:00"}
blackouts:
  - name: Friday afternoon
    weekly: {days: [fri], start: "14:00", end: "24:00"}
  - name: Christmas
    dates: [{from: "2026-12-24", to: "2026-12-26"}]
dependencies:
  api-server: [database]
"""
)
# Tuesday 24 Nov 2026, 10:30 London (= UTC in winter): inside the normal window
INSIDE = int(datetime(2026, 11, 24, 10, 30, tzinfo=UTC).timestamp())


@pytest.fixture
def policy_text() -> str:
    return CALENDAR_POLICY


def modal_blocks(harness: Harness) -> list[dict[str, Any]]:
    from modals.intake import new_change_modal

    return new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]


async def submit(
    harness: Harness, *, user: str = "UREQ", confirm: bool = True, **fields: Any
) -> dict[str, Any]:
    form = {k: v for k, v in fields.items() if k not in ("exception", "exception_reason")}
    values = change_form_state(**harness.form(**form))
    if fields.get("exception"):
        values["exception"] = {
            "exception": {"type": "checkboxes", "selected_options": [{"value": "requested"}]}
        }
    if fields.get("exception_reason"):
        values["exception_reason"] = {
            "exception_reason": {"type": "plain_text_input", "value": fields["exception_reason"]}
        }
    return await harness.submit(
        "change_new", values, user=user, view_blocks=modal_blocks(harness), confirm_conflicts=confirm
    )


async def test_outside_the_window_is_refused_inline_with_the_next_slot(harness: Harness) -> None:
    monday = int(datetime(2026, 11, 30, 10, 30, tzinfo=UTC).timestamp())
    answer = await submit(harness, starts_at=monday, ends_at=monday + 3600, exception=False)
    assert answer["response_action"] == "errors"
    message = answer["errors"]["starts_at"]
    assert "Normal changes run Tue/Wed/Thu 10:00-16:00" in message
    assert "Next allowed start: Tue 01 Dec 2026 10:00 GMT" in message
    assert "request an exception" in message
    with pytest.raises(Exception, match="does not exist"):
        await harness.change("CR-2026-0001")
    ok = await submit(harness, starts_at=INSIDE, ends_at=INSIDE + 3600)
    assert ok == {}


async def test_a_blackout_is_refused_even_inside_the_window(harness: Harness) -> None:
    christmas_eve = int(datetime(2026, 12, 24, 11, 0, tzinfo=UTC).timestamp())  # a Thursday
    answer = await submit(harness, starts_at=christmas_eve, ends_at=christmas_eve + 3600)
    assert "It touches a blackout: Christmas." in answer["errors"]["starts_at"]
    assert "Next allowed start: Tue 29 Dec 2026 10:00 GMT" in answer["errors"]["starts_at"]


async def test_an_exception_request_adds_an_approval_step(harness: Harness) -> None:
    friday = int(datetime(2026, 11, 27, 15, 0, tzinfo=UTC).timestamp())
    missing = await submit(harness, starts_at=friday, ends_at=friday + 1800, exception=True)
    assert "exception_reason" in missing["errors"]
    answer = await submit(
        harness,
        starts_at=friday,
        ends_at=friday + 1800,
        exception=True,
        exception_reason="Vendor deadline <!channel>",
    )
    assert answer == {}
    change = await harness.change("CR-2026-0001")
    assert [(s.role, s.purpose) for s in change.steps] == [
        ("tech_lead", ""),
        ("engineering_manager", "exception"),
    ]
    card = json.dumps(
        next(c.params["blocks"] for c in harness.posts_to("CCHANGES") if c.params.get("blocks"))
    )
    assert "Engineering manager (exception) 0/1" in card and "Vendor deadline &lt;!channel&gt;" in card
    assert {"UMGR1", "UMGR2"} <= {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")}
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    assert (await harness.change("CR-2026-0001")).status is Status.PENDING_APPROVAL
    await harness.click("change_approve", "CR-2026-0001", user="UMGR1")
    assert (await harness.change("CR-2026-0001")).status is Status.APPROVED


async def test_conflicts_warn_in_the_modal_and_a_second_submit_confirms(harness: Harness) -> None:
    assert (
        await submit(
            harness, title="Database upgrade", services=["database"], starts_at=INSIDE, ends_at=INSIDE + 3600
        )
        == {}
    )
    first = await submit(
        harness,
        title="API release",
        services=["api-server"],
        starts_at=INSIDE + 1800,
        ends_at=INSIDE + 5400,
        confirm=False,
    )
    assert first["response_action"] == "update"
    warning = first["view"]["blocks"][0]
    assert warning["block_id"] == "conflicts" and "CR-2026-0001" in warning["text"]["text"]
    assert "Database upgrade" in warning["text"]["text"] and "(database)" in warning["text"]["text"]
    assert [b.get("block_id") for b in first["view"]["blocks"][1:]] == [
        b.get("block_id") for b in modal_blocks(harness)
    ]
    with pytest.raises(Exception, match="does not exist"):
        await harness.change("CR-2026-0002")
    values = change_form_state(
        **harness.form(
            title="API release", services=["api-server"], starts_at=INSIDE + 1800, ends_at=INSIDE + 5400
        )
    )
    second = await harness.submit(
        "change_new",
        values,
        user="UREQ",
        private_metadata=first["view"]["private_metadata"],
        confirm_conflicts=False,
    )
    assert second == {}
    change = await harness.change("CR-2026-0002")
    assert change.conflicts == ("CR-2026-0001",)
    cards = [
        json.dumps(c.params["blocks"])
        for c in harness.slack.calls_to("chat.postMessage")
        if c.params.get("blocks") and "CR-2026-0002" in json.dumps(c.params["blocks"])
    ]
    assert cards and all("Overlaps* CR-2026-0001" in card for card in cards)  # channel and approvers' DMs
    apart = await submit(
        harness,
        title="Later",
        services=["api-server"],
        starts_at=INSIDE + 86400,
        ends_at=INSIDE + 86400 + 600,
        confirm=False,
    )
    assert apart == {}


async def test_freeze_by_an_authorised_role_blocks_intake_and_shows_in_the_digest(harness: Harness) -> None:
    refused = await harness.command("freeze start quarter close", user="ULEAD1")
    assert "Not done: only these roles" in json.dumps(refused["blocks"])
    started = await harness.command("freeze start quarter close", user="UMGR1")
    assert "freeze is on" in json.dumps(started["blocks"])
    assert any(
        "declared a change freeze: quarter close" in c.params["text"] for c in harness.posts_to("CCHANGES")
    )
    twice = await harness.command("freeze start again", user="UCTO")
    assert "already on" in json.dumps(twice["blocks"])
    blocked = await submit(harness, starts_at=INSIDE, ends_at=INSIDE + 3600)
    assert "Change freeze: quarter close" in blocked["errors"]["starts_at"]
    calendar = json.dumps((await harness.command("calendar week", user="UREQ"))["blocks"])
    assert "quarter close" in calendar and "Blackouts and freezes" in calendar
    ended = await harness.command("freeze end", user="UCTO")
    assert "lifted" in json.dumps(ended["blocks"])
    assert await submit(harness, starts_at=INSIDE, ends_at=INSIDE + 3600) == {}
    audit_actions = [
        c.params["text"] for c in harness.posts_to("CCHANGES") if "freeze" in c.params.get("text", "")
    ]
    assert len(audit_actions) == 2


async def test_rescheduling_runs_the_same_checks(harness: Harness) -> None:
    assert await submit(harness, starts_at=INSIDE, ends_at=INSIDE + 3600) == {}
    await harness.command("reschedule CR-2026-0001", user="UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    friday = int(datetime(2026, 11, 27, 15, 0, tzinfo=UTC).timestamp())
    answer = await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": friday}},
            "ends_at": {"ends_at": {"selected_date_time": friday + 600}},
        },
        user="UREQ",
        private_metadata=meta,
    )
    assert "Friday afternoon" in answer["errors"]["starts_at"]
    wednesday = INSIDE + 86400
    ok = await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": wednesday}},
            "ends_at": {"ends_at": {"selected_date_time": wednesday + 600}},
        },
        user="UREQ",
        private_metadata=meta,
    )
    assert ok == {}


async def test_the_ics_feed_needs_its_token_and_lists_every_event(harness: Harness) -> None:
    assert await submit(harness, title="Gateway upgrade", starts_at=INSIDE, ends_at=INSIDE + 3600) == {}
    await harness.command("freeze start audit week", user="UMGR1")
    repository = harness.bot.context.gateway.repository
    token = await repository.feed_token(now=harness.clock.now())
    assert (await harness.http.get("/calendar.ics")).status == 403
    assert (await harness.http.get("/calendar.ics?token=wrong")).status == 403
    response = await harness.http.get(f"/calendar.ics?token={token}")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(await response.read())
    events = {str(e["uid"]): e for e in calendar.walk("VEVENT")}
    change = events["CR-2026-0001@changebot"]
    assert "Gateway upgrade" in str(change["summary"]) and str(change["status"]) == "TENTATIVE"
    assert change.decoded("dtstart") == datetime.fromtimestamp(INSIDE, UTC)
    assert "Risk: medium" in str(change["description"])
    assert any(str(e["summary"]) == "Blackout: Friday afternoon" for e in events.values())
    assert any(str(e["summary"]) == "Blackout: Christmas" for e in events.values())
    assert any(str(e["summary"]).startswith("Change freeze: audit week") for e in events.values())
    rotated = await repository.feed_token(now=harness.clock.now(), rotate=True)
    assert (await harness.http.get(f"/calendar.ics?token={token}")).status == 403
    assert (await harness.http.get(f"/calendar.ics?token={rotated}")).status == 200


async def test_calendar_cli_token_and_export(harness: Harness, tmp_path: Path) -> None:
    from tests.support.processes import clean_env, run

    (tmp_path / "policy.yml").write_text(CALENDAR_POLICY)
    assert await submit(harness, starts_at=INSIDE, ends_at=INSIDE + 3600) == {}
    env = clean_env(DATABASE_URL=harness.bot.settings.database_url, SLACK_BOT_TOKEN="xoxb-1")
    code, out, err = await run(
        "calendar", "token", "--base-url", "https://bot.example.com", env=env, cwd=tmp_path
    )
    assert code == 0, err
    url = out.strip()
    assert url.startswith("https://bot.example.com/calendar.ics?token=")
    token = url.split("token=")[1]
    assert (await harness.http.get(f"/calendar.ics?token={token}")).status == 200
    code, out, err = await run(
        "calendar", "export", "--out", str(tmp_path / "changes.ics"), env=env, cwd=tmp_path
    )
    assert code == 0, err
    exported = icalendar.Calendar.from_ical((tmp_path / "changes.ics").read_bytes())
    assert "CR-2026-0001@changebot" in {str(e["uid"]) for e in exported.walk("VEVENT")}
    code, out, err = await run("calendar", "token", "--rotate", env=env, cwd=tmp_path)
    assert code == 0 and token not in out
    assert (await harness.http.get(f"/calendar.ics?token={token}")).status == 403
    assert sys.executable


async def test_app_home_shows_what_waits_for_me_and_follows_changes(harness: Harness) -> None:
    assert await submit(harness, title="Needs a lead", starts_at=INSIDE, ends_at=INSIDE + 3600) == {}
    await harness.event(
        {"type": "app_home_opened", "user": "ULEAD1", "tab": "home", "channel": "D1"}, event_id="EvHome1"
    )
    [published] = harness.slack.calls_to("views.publish")
    assert published.params["user_id"] == "ULEAD1"
    home = json.dumps(published.params["view"])
    assert "Waiting for you* (1)" in home and "change_approve" in home and "Needs a lead" in home
    assert "home_new_change" in home
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD2")
    refreshed = harness.slack.calls_to("views.publish")[-1]
    assert refreshed.params["user_id"] == "ULEAD1"
    assert "Waiting for you* (0)" in json.dumps(refreshed.params["view"])
    await harness.event(
        {"type": "app_home_opened", "user": "UREQ", "tab": "home", "channel": "D2"}, event_id="EvHome2"
    )
    mine = json.dumps(harness.slack.calls_to("views.publish")[-1].params["view"])
    assert "Your change requests* (1)" in mine and "Friday afternoon" in mine
    await harness.click("home_new_change", "new", user="UREQ")
    assert harness.slack.calls_to("views.open")[-1].params["view"]["callback_id"] == "change_new"
