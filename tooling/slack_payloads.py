"""Requests shaped and signed exactly as Slack sends them to `POST /slack/events`.

The demo and `changebot slack send` drive the bot through its real door (signature
check, Bolt, the handlers) instead of calling use cases, so what they show is what a
workspace would get. The tests sign requests and fill forms with these same helpers
(tests/support/slack_requests.py); here every moment comes from the caller's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tooling.emulator import APP_ID, TEAM_ID

TEAM = {"id": TEAM_ID, "domain": "emulated"}
NO_RESPONSE_URL = "http://127.0.0.1:9/response/none"
_TRIGGER_USER = re.compile(r"^\d+\.([UW][A-Z0-9]+)\.")

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def sign(body: bytes, timestamp: int, secret: str) -> dict[str, str]:
    """Slack's v0 request signature headers for `body` sent at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def form_headers(body: bytes, *, timestamp: int, secret: str) -> dict[str, str]:
    """The headers of a form body posted as Slack posts it: its content type and signature."""
    return {"Content-Type": FORM, **sign(body, timestamp, secret)}


def trigger_id(user: str, serial: int) -> str:
    """Shaped like Slack's (`digits.digits.hex`), with the user inside so a printer can
    say whose screen a modal opened on (views.open does not name the user)."""
    return f"{serial}.{user}.demo"


def user_of_trigger(trigger: str) -> str | None:
    match = _TRIGGER_USER.match(trigger)
    return match.group(1) if match else None


def form_body(fields: dict[str, Any]) -> bytes:
    return urlencode(fields).encode()


def command_body(
    text: str,
    *,
    user: str,
    trigger: str,
    channel: str = "CCHANGES",
    channel_name: str = "changes",
    command: str = "/change",
    response_url: str = NO_RESPONSE_URL,
) -> bytes:
    return form_body(
        {
            "token": "legacy",
            "team_id": TEAM["id"],
            "team_domain": TEAM["domain"],
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "response_url": response_url,
            "trigger_id": trigger,
        }
    )


def interaction_body(payload: dict[str, Any]) -> bytes:
    return form_body({"payload": json.dumps(payload)})


def _interaction(kind: str, *, user: str, trigger: str) -> dict[str, Any]:
    """What every interaction payload opens with: its type, the team, who, the app, the trigger."""
    return {
        "type": kind,
        "team": TEAM,
        "user": {"id": user, "username": user.lower(), "team_id": TEAM["id"]},
        "api_app_id": APP_ID,
        "token": "legacy",
        "trigger_id": trigger,
    }


def block_action(
    action_id: str,
    value: str,
    *,
    user: str,
    trigger: str,
    action_ts: str,
    channel: str = "CCHANGES",
    message_ts: str = "1.0",
    response_url: str = NO_RESPONSE_URL,
) -> dict[str, Any]:
    """A button click on a message in `channel` (a `D…` id for a click in a DM)."""
    return {
        **_interaction("block_actions", user=user, trigger=trigger),
        "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
        "channel": {"id": channel, "name": channel.lower()},
        "message": {"ts": message_ts, "text": "card"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": f"decide:{value}",
                "type": "button",
                "value": value,
                "action_ts": action_ts,
            }
        ],
    }


def click_body(action_id: str, value: str, *, user: str, channel: str, trigger: str, at: float) -> bytes:
    """The form body of a button click by `user` in `channel` at epoch seconds `at`."""
    payload = block_action(
        action_id, value, user=user, channel=channel, trigger=trigger, action_ts=f"{at:.6f}"
    )
    return interaction_body(payload)


def view_submission(
    callback_id: str,
    values: dict[str, Any],
    *,
    user: str,
    trigger: str,
    private_metadata: str = "",
    view_blocks: list[dict[str, Any]] | None = None,
    view_id: str | None = None,
) -> dict[str, Any]:
    return {
        **_interaction("view_submission", user=user, trigger=trigger),
        "view": {
            "id": view_id or f"V-{trigger}",  # each opened modal has an id of its own
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": view_blocks or [],
            "state": {"values": values},
            "hash": "h",
        },
    }


def event_body(event: dict[str, Any], *, event_id: str, event_time: int) -> bytes:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM["id"],
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time,
            "event": event,
        }
    ).encode()


# --- form state as Slack sends it --------------------------------------------------
def text_value(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def select_value(value: str | None) -> dict[str, Any]:
    return {
        "type": "static_select",
        "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}} if value else None,
    }


def multi_value(values: list[str]) -> dict[str, Any]:
    return {
        "type": "multi_static_select",
        "selected_options": [{"value": v, "text": {"type": "plain_text", "text": v}} for v in values],
    }


def users_value(users: list[str]) -> dict[str, Any]:
    return {"type": "multi_users_select", "selected_users": list(users)}


def conversations_value(channels: list[str]) -> dict[str, Any]:
    return {"type": "multi_conversations_select", "selected_conversations": list(channels)}


def datetime_value(epoch: int | None) -> dict[str, Any]:
    return {"type": "datetimepicker", "selected_date_time": epoch}


def user_value(user: str | None) -> dict[str, Any]:
    return {"type": "users_select", "selected_user": user}


_CHANGE_FIELDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "title": text_value,
    "description": text_value,
    "justification": text_value,
    "implementation_plan": text_value,
    "rollback_plan": text_value,
    "test_plan": text_value,
    "downtime": lambda v: {"type": "number_input", "value": v},
    "category": select_value,
    "catalog": select_value,
    "impact": select_value,
    "likelihood": select_value,
    "services": multi_value,
    "starts_at": datetime_value,
    "ends_at": datetime_value,
    "implementer": user_value,
    "links": text_value,
    "success_criteria": text_value,
    "dependencies": text_value,
    "rollback_triggers": text_value,
    "rollback_duration": lambda v: {"type": "number_input", "value": v},
    "stakeholders": users_value,
    "stakeholder_channels": conversations_value,
}


def change_form_state(**fields: Any) -> dict[str, Any]:
    """State of the `/change new` modal: each block id maps to {action_id: value}."""
    return {name: {name: _CHANGE_FIELDS[name](value)} for name, value in fields.items()}


def emergency_form_state(
    *,
    title: str,
    severity: str,
    services: list[str],
    broken: str,
    fix: str,
    rollback: str | None = None,
    incident: str | None = None,
) -> dict[str, Any]:
    """State of the `/change emergency` modal."""
    state: dict[str, Any] = {
        "severity": {"severity": select_value(severity)},
        "services": {"services": multi_value(services)},
    }
    for key, value in (
        ("title", title),
        ("broken", broken),
        ("fix", fix),
        ("rollback", rollback),
        ("incident", incident),
    ):
        if value is not None:
            state[key] = {key: text_value(value)}
    return state
