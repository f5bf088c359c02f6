"""Is a signed body shaped like something Slack sends? Checked at the door, before Bolt.

Bolt and the listeners read bodies as Slack documents them (`body["user"]["id"]`, a
list of actions, a view with state). A body signed with our secret but shaped otherwise
(a bug in a proxy, a replay tool, a leaked secret) gets a 400 here instead of a
traceback and a 500 somewhere inside. Pure: bytes and a content type in, a reason out.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
INTERACTIONS = frozenset(
    {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"}
)
EVENT_ENVELOPES = frozenset({"url_verification", "event_callback", "app_rate_limited"})
MAX_ID = 40  # Slack ids are about 11 characters; ours end up in 40-character columns
# Keys Slack sends as objects (or null); listeners call .get() on them.
OBJECTS = ("team", "channel", "container", "message", "view", "enterprise", "event")


class Malformed(ValueError):
    """Why a body is not a Slack request."""


def request_problem(body: bytes, content_type: str) -> str | None:
    """Why `body` is not a request Slack would send, or None."""
    try:
        text = body.decode("utf-8")
        if content_type == FORM:
            _check_form(text)
        elif content_type == JSON:
            _check_envelope(_json_object(text))
        else:
            raise Malformed(f"unsupported content type {content_type[:40]!r}")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    except Malformed as problem:
        return str(problem)
    return None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Malformed("body is not JSON") from None
    if not isinstance(value, dict):
        raise Malformed("JSON body is not an object")
    return value


def _check_form(text: str) -> None:
    fields = parse_qs(text, keep_blank_values=True)
    if "ssl_check" in fields:
        return
    if "payload" in fields:
        if len(fields["payload"]) != 1:
            raise Malformed("more than one payload")
        _check_interaction(_json_object(fields["payload"][0]))
    elif "command" in fields:
        if not fields["command"][0].startswith("/"):
            raise Malformed("command does not start with /")
        if not fields.get("user_id", [""])[0]:
            raise Malformed("command without user_id")
        _check_ids({key: values[0] for key, values in fields.items()}, "user_id", "channel_id")
    else:
        raise Malformed("form body with neither payload nor command")


def _known_kind(body: dict[str, Any], known: frozenset[str], what: str) -> str:
    """The body's type, one of `known`, once the keys listeners .get() on are objects."""
    kind = body.get("type")
    if kind not in known:
        raise Malformed(f"unknown {what} type {str(kind)[:40]!r}")
    _check_objects(body)
    return str(kind)


def _check_interaction(payload: dict[str, Any]) -> None:
    kind = _known_kind(payload, INTERACTIONS, "payload")
    user = payload.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        raise Malformed(f"{kind} without a user id")
    _check_ids(user, "id")
    _check_ids(payload.get("channel") or {}, "id")
    _check_ids(payload.get("container") or {}, "channel_id")
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            raise Malformed("block_actions without actions")
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            raise Malformed("an action without an action_id")
    elif kind in ("view_submission", "view_closed"):
        _check_view(payload.get("view"), kind)
    elif kind in ("shortcut", "message_action") and not isinstance(payload.get("callback_id"), str):
        raise Malformed(f"{kind} without a callback_id")


def _check_view(view: Any, kind: str) -> None:
    if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
        raise Malformed(f"{kind} without a view callback_id")
    if view.get("type") not in ("modal", "home"):  # Bolt reads a workflow_step view further
        raise Malformed(f"{kind} of a view of type {str(view.get('type'))[:40]!r}")
    if not isinstance(view.get("private_metadata", ""), str):
        raise Malformed("private_metadata is not a string")
    if not isinstance(view.get("blocks", []), list):
        raise Malformed("view blocks are not a list")
    state = view.get("state")
    if kind == "view_submission":
        if not isinstance(state, dict) or not isinstance(state.get("values"), dict):
            raise Malformed("view_submission without state values")
        if not all(isinstance(block, dict) for block in state["values"].values()):
            raise Malformed("view state block is not an object")


def _check_envelope(envelope: dict[str, Any]) -> None:
    kind = _known_kind(envelope, EVENT_ENVELOPES, "request")
    if kind == "url_verification" and not isinstance(envelope.get("challenge"), str):
        raise Malformed("url_verification without a challenge")
    if kind == "event_callback":
        event = envelope.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise Malformed("event_callback without an event type")
        if event["type"] == "workflow_step_execute":  # Bolt reads its step; we have none
            raise Malformed("workflow_step_execute event")
        if event["type"] in ("app_mention", "app_home_opened", "message"):
            _check_ids(event, "user", "channel")
            _check_strings(event, "text", "ts", "thread_ts", "tab")
        if not isinstance(envelope.get("event_id", ""), str):
            raise Malformed("event_id is not a string")


def _check_ids(body: dict[str, Any], *keys: str) -> None:
    """Ids become channels of queued messages: a dict or a novel there would jam the queue."""
    for key in keys:
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID):
            raise Malformed(f"{key} is not a Slack id")


def _check_strings(body: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise Malformed(f"{key} is not a string")


def _check_objects(body: dict[str, Any]) -> None:
    for key in OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise Malformed(f"{key} is not an object")
