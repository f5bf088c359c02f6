"""Builds signed requests the way Slack sends them, so tests go through the real door."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from tooling import slack_payloads

# The form state and the form encoding are the tooling's own: one fake Slack for the demo
# and the tests. Re-exported for the tests that build requests from here.
from tooling.slack_payloads import change_form_state as change_form_state
from tooling.slack_payloads import datetime_value as datetime_value
from tooling.slack_payloads import form_body as form_body
from tooling.slack_payloads import interaction_body as interaction_body
from tooling.slack_payloads import multi_value as multi_value
from tooling.slack_payloads import select_value as select_value
from tooling.slack_payloads import text_value as text_value

SIGNING_SECRET = "test-signing-secret"
TEAM = {"id": "T0001", "domain": "emulated"}
_views = itertools.count(1)  # Slack gives every opened modal an id of its own


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's signature headers, with the tests' signing secret unless told otherwise."""
    return slack_payloads.sign(body, timestamp, secret)


def command_body(text: str, *, user: str, channel: str = "CCHANGES", trigger_id: str = "trig-1") -> bytes:
    return form_body(
        {
            "token": "legacy",
            "team_id": TEAM["id"],
            "team_domain": TEAM["domain"],
            "channel_id": channel,
            "channel_name": "changes",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/change",
            "text": text,
            "api_app_id": "A0001",
            "response_url": "http://127.0.0.1:9/response/none",
            "trigger_id": trigger_id,
        }
    )


def block_action(
    action_id: str, value: str, *, user: str, channel: str = "CCHANGES", trigger_id: str = "trig-2"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0001",
        "token": "legacy",
        "trigger_id": trigger_id,
        "container": {"type": "message", "channel_id": channel, "message_ts": "1.0"},
        "channel": {"id": channel, "name": "changes"},
        "message": {"ts": "1.0", "text": "card"},
        "response_url": "http://127.0.0.1:9/response/none",
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"decide:{value}",
                "type": "button",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }


def view_submission(
    callback_id: str,
    values: dict[str, Any],
    *,
    user: str,
    private_metadata: str = "",
    view_blocks: list[dict[str, Any]] | None = None,
    view_id: str | None = None,
    view_hash: str = "h",
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": "A0001",
        "token": "legacy",
        "trigger_id": "trig-3",
        "view": {
            "id": view_id or f"V{next(_views):04d}",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": view_blocks or [],
            "state": {"values": values},
            "hash": view_hash,
        },
    }


def event_body(event: dict[str, Any], *, event_id: str) -> bytes:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM["id"],
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()
