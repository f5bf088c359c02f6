"""The HTTP door under hostile or broken input: bad signature headers, signed bodies of
the wrong shape and a flood of either get a 4xx and (at most) one short log line a
minute, never a 500 or a traceback."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.harness import Harness
from tests.support.slack_requests import block_action, change_form_state, sign, view_submission

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records an operator would be paged for: ERROR and up, or any traceback."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def raw_post(harness: Harness, body: bytes, headers: dict[str, str]) -> Any:
    return await harness.http.post("/slack/events", data=body, headers=headers)


@SQLITE
async def test_non_ascii_signature_headers_are_401_with_one_short_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"command=%2Fchange&user_id=UREQ"
    now = str(int(harness.clock.now().timestamp()))
    caplog.set_level(logging.INFO)
    bad_signature = await raw_post(
        harness,
        body,
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "\xff" * 64},
    )
    unicode_digits = await raw_post(
        harness,
        body,
        {"Content-Type": FORM, "X-Slack-Request-Timestamp": "¹²³", **{"X-Slack-Signature": "v0=" + "a" * 64}},
    )
    assert (bad_signature.status, unicode_digits.status) == (401, 401)
    assert not loud(caplog)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
    assert len(lines) == 1 and "\n" not in lines[0] and len(lines[0]) < 200


@pytest.mark.parametrize(
    "token",
    ["%C3%A9" * 16, "%FF%FE" * 16, "%00" * 32, "%D9%A1" * 32, "a" * 500, "a+b", ""],
    ids=["accented", "not-utf8", "nul", "arabic-digits", "overlong", "space", "empty"],
)
async def test_odd_calendar_tokens_are_403_before_any_lookup(
    harness: Harness, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    await harness.bot.context.gateway.repository.feed_token(now=harness.clock.now())  # one to compare with
    response = await harness.http.get(f"/calendar.ics?token={token}")
    assert response.status == 403
    assert not loud(caplog)


@SQLITE
async def test_a_flood_of_unsigned_requests_logs_a_line_a_minute(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(50):
        response = await raw_post(harness, b"x", {"Content-Type": FORM})
        assert response.status == 401
    assert len([r for r in caplog.records if r.name == "bot.http"]) == 1
    harness.clock.advance(timedelta(seconds=61))
    await raw_post(harness, b"x", {"Content-Type": FORM})
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
    assert len(lines) == 2 and "49 more" in lines[1]


def interaction(payload: Any) -> bytes:
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)}).encode()


def click(**changes: Any) -> dict[str, Any]:
    payload = block_action("approve", "CR-2026-0001", user="UAPP1", trigger_id="t")
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not ...}


def submission(**view_changes: Any) -> dict[str, Any]:
    payload = view_submission("change_new", change_form_state(title="x"), user="UREQ")
    payload["view"].update(view_changes)
    payload["view"] = {k: v for k, v in payload["view"].items() if v is not ...}
    return payload


MALFORMED: dict[str, tuple[bytes, str]] = {
    "payload list": (b"payload=%5B%5D", FORM),
    "payload number": (b"payload=1", FORM),
    "payload null": (b"payload=null", FORM),
    "payload not JSON": (b"payload=%7Bnope", FORM),
    "json array": (b"[]", JSON),
    "json null": (b"null", JSON),
    "no actions": (interaction(click(actions=[])), FORM),
    "action not an object": (interaction(click(actions=["approve"])), FORM),
    "no user": (interaction(click(user=...)), FORM),
    "user without id": (interaction(click(user={"name": "x"})), FORM),
    "message a string": (interaction(click(message="hello")), FORM),
    "channel a list": (interaction(click(channel=["C1"])), FORM),
    "view without state": (interaction(submission(state=...)), FORM),
    "state values a list": (interaction(submission(state={"values": []})), FORM),
    "field block not an object": (interaction(submission(state={"values": {"title": "x"}})), FORM),
    "unknown payload type": (interaction({**click(), "type": "dance"}), FORM),
    "event null": (json.dumps({"type": "event_callback", "event_id": "Ev1", "event": None}).encode(), JSON),
    "mention in a channel object": (
        json.dumps(
            {"type": "event_callback", "event": {"type": "app_mention", "channel": {"id": "C1"}}}
        ).encode(),
        JSON,
    ),
    "overlong user id": (interaction(click(user={"id": "U" * 300})), FORM),
    "event without type": (
        json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {}}).encode(),
        JSON,
    ),
    "unknown envelope": (json.dumps({"type": "dance"}).encode(), JSON),
    "not UTF-8": (b"command=%2Fchange&text=\xff\xfe&user_id=U1", FORM),
    "form without command": (b"text=hello&user_id=U1", FORM),
    "command without user": (b"command=%2Fchange&text=list", FORM),
    "wrong content type": (b"command=%2Fchange&user_id=U1", "text/plain"),
    "no content type": (b"command=%2Fchange&user_id=U1", ""),
}


@SQLITE
@pytest.mark.parametrize("name", MALFORMED)
async def test_signed_malformed_bodies_are_400_without_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    body, content_type = MALFORMED[name]
    headers = {**sign(body, int(harness.clock.now().timestamp())), "Content-Type": content_type}
    response = await raw_post(harness, body, headers)
    assert response.status == 400, await response.text()
    assert not loud(caplog)
    assert not harness.slack.calls


@SQLITE
async def test_what_a_listener_cannot_read_is_one_line_not_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the door's shape check, a listener can still meet a value it cannot read (here
    view blocks that are not objects): Bolt's error handler answers 400 with one line."""
    caplog.set_level(logging.INFO)
    junk_blocks = view_submission("change_new", change_form_state(title="x"), user="UREQ", view_blocks=["x"])
    response = await harness.post(interaction(junk_blocks), content_type=FORM)
    assert response.status == 400, await response.text()
    assert not loud(caplog)
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("bot.")]
    assert "could not read a view_submission request: AttributeError" in line and "\n" not in line


@SQLITE
async def test_a_button_nobody_listens_to_is_one_short_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await harness.post(interaction(click(actions=[{"action_id": "nope"}])), content_type=FORM)
    assert response.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("bot.", "slack_bolt"))]
    assert lines == ["no listener for a block_actions request (nope)"]


KEYS = [
    "type", "user", "id", "team", "channel", "container", "message", "view", "actions", "action_id",
    "callback_id", "state", "values", "event", "enterprise", "authorizations", "trigger_id", "channel_id",
    "user_id", "team_id", "enterprise_id", "private_metadata", "blocks", "block_id", "value", "ts",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "U1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)
payloads = st.builds(
    lambda kind, extra, user, first: {**extra, "type": kind, "user": user, **first},
    st.sampled_from(["block_actions", "view_submission", "view_closed", "shortcut", "message_action", "x"]),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8),
    st.one_of(json_values, st.fixed_dictionaries({"id": st.sampled_from(["UREQ", "UAPP1"])}, optional={"team_id": json_values})),
    st.one_of(
        st.just({}),
        st.fixed_dictionaries({"actions": st.lists(st.fixed_dictionaries({"action_id": st.sampled_from(["change_approve", "change_reject", "change_start"])}, optional={"value": json_values}), max_size=2)}),
        st.fixed_dictionaries({"view": st.fixed_dictionaries({"callback_id": st.sampled_from(["change_new", "reject_reason", "x"]), "type": st.sampled_from(["modal", "modal", "workflow_step"]), "state": st.fixed_dictionaries({"values": st.dictionaries(st.sampled_from(["title", "reason"]), json_values, max_size=2)})}, optional={"private_metadata": json_values, "blocks": json_values})}),
    ),
)  # fmt: skip


@SQLITE
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=payloads)
async def test_fuzzed_signed_payloads_are_never_a_500_or_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, payload: dict[str, Any]
) -> None:
    caplog.clear()
    response = await harness.post(interaction(payload), content_type=FORM)
    assert response.status in (200, 400, 404), await response.text()
    await harness.settle()
    assert not loud(caplog), [r.getMessage() for r in loud(caplog)]


events = st.builds(
    lambda extra, event: {**extra, "type": "event_callback", "event": event},
    st.dictionaries(st.sampled_from(["event_id", "team_id", "authorizations", "enterprise", "api_app_id"]), json_values),
    st.builds(
        lambda kind, extra: {**extra, "type": kind},
        st.sampled_from(["app_mention", "app_home_opened", "message", "x"]),
        st.dictionaries(st.sampled_from(["user", "channel", "text", "tab", "ts", "thread_ts", "bot_id"]), json_values),
    ),
)  # fmt: skip


@SQLITE
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(envelope=events)
async def test_fuzzed_signed_events_are_never_a_500_or_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture, envelope: dict[str, Any]
) -> None:
    caplog.clear()
    response = await harness.post(json.dumps(envelope).encode(), content_type=JSON)
    assert response.status in (200, 400, 404), await response.text()
    await harness.settle()
    assert not loud(caplog), [r.getMessage() for r in loud(caplog)]
