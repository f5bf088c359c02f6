"""`/change show|list|help`, unknown subcommands, and the signed-request door."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.harness import Harness
from tests.support.slack_requests import command_body, event_body, sign


def section_text(answer: dict) -> str:
    return json.dumps(answer.get("blocks", []))


async def test_help_and_unknown_subcommand_answer_ephemerally(harness: Harness) -> None:
    for text in ("help", ""):
        answer = await harness.command(text, user="UREQ")
        assert answer["response_type"] == "ephemeral"
        assert "/change new" in section_text(answer)
    unknown = await harness.command("frobnicate <!channel>", user="UREQ")
    assert unknown["response_type"] == "ephemeral"
    assert "I don't know `/change frobnicate`" in section_text(unknown)
    assert {c.method for c in harness.slack.calls} <= {"auth.test"}  # nothing was posted anywhere


async def test_show_prints_the_change_with_audit_trail(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    answer = await harness.command("show cr-2026-0001", user="USOMEONE")
    text = section_text(answer)
    assert answer["response_type"] == "ephemeral"
    assert "CR-2026-0001" in text and "Audit trail" in text and "approval recorded" in text
    assert "change_approve" not in text  # no buttons in the read-only view
    missing = await harness.command("show CR-2026-0099", user="USOMEONE")
    assert "There is no change CR-2026-0099" in section_text(missing)
    malformed = await harness.command("show", user="USOMEONE")
    assert "Which change?" in section_text(malformed)


async def test_list_scopes(harness: Harness) -> None:
    await harness.file_change(user="UREQ", title="Mine pending")
    await harness.file_change(user="UOTHER", title="Other low risk", impact="low", likelihood="low")
    far = int((harness.clock.now() + timedelta(days=30)).timestamp())
    await harness.file_change(user="UOTHER", title="Far away", starts_at=far, ends_at=far + 600)
    mine = section_text(await harness.command("list mine", user="UREQ"))
    assert "Mine pending" in mine and "Other low risk" not in mine
    pending = section_text(await harness.command("list pending", user="UREQ"))
    assert "Mine pending" in pending and "Far away" in pending and "Other low risk" not in pending
    upcoming = section_text(await harness.command("list upcoming", user="UREQ"))
    assert "Mine pending" in upcoming and "Other low risk" in upcoming and "Far away" not in upcoming
    default = section_text(await harness.command("list", user="UREQ"))
    assert "Your change requests" in default
    bad = section_text(await harness.command("list everything", user="UREQ"))
    assert "List what?" in bad
    empty = section_text(await harness.command("list mine", user="UNOBODY"))
    assert "Nothing here" in empty


BAD_HEADERS = {
    "missing": {},
    "bad signature": {"X-Slack-Request-Timestamp": "TS", "X-Slack-Signature": "v0=" + "0" * 64},
    "stale": "STALE",
    "non-numeric timestamp": {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64},
    "malformed signature": {"X-Slack-Request-Timestamp": "TS", "X-Slack-Signature": "sha1=zz"},
    "huge timestamp": {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=" + "0" * 64},
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
async def test_unsigned_requests_get_401_and_do_nothing(harness: Harness, case: str) -> None:
    body = command_body("new", user="UREQ")
    now = int(harness.clock.now().timestamp())
    headers = BAD_HEADERS[case]
    if headers == "STALE":
        headers = sign(body, now - 301)
    else:
        headers = {k: v.replace("TS", str(now)) for k, v in headers.items()}
    response = await harness.http.post(
        "/slack/events", data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    assert response.status == 401
    await harness.settle()
    assert not harness.slack.calls


async def test_body_tampered_after_signing_is_rejected(harness: Harness) -> None:
    body = command_body("new", user="UREQ")
    headers = sign(body, int(harness.clock.now().timestamp()))
    response = await harness.http.post(
        "/slack/events",
        data=body.replace(b"UREQ", b"UCTO"),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status == 401


async def test_event_retries_never_act_twice(harness: Harness) -> None:
    event = {
        "type": "app_mention",
        "user": "UREQ",
        "text": "<@UBOT> help",
        "channel": "CCHANGES",
        "ts": "1700000100.000100",
    }
    first = await harness.event(event, event_id="Ev001")
    assert first.status == 200
    retry = await harness.event(event, event_id="Ev001", retry_num=1)
    assert retry.status == 200
    again = await harness.event(event, event_id="Ev001", retry_num=2)
    assert again.status == 200
    replies = harness.slack.calls_to("chat.postMessage")
    assert len(replies) == 1
    assert replies[0].params["thread_ts"] == "1700000100.000100"
    await harness.event({**event, "ts": "1700000200.000100"}, event_id="Ev002")
    assert len(harness.slack.calls_to("chat.postMessage")) == 2


async def test_url_verification_challenge(harness: Harness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    response = await harness.post(body, content_type="application/json")
    assert response.status == 200
    assert "c-123" in await response.text()


async def test_unused_event_body_helper() -> None:
    assert json.loads(event_body({"type": "x"}, event_id="E1"))["event_id"] == "E1"
