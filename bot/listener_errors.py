"""Bolt's error handler: what Slack is answered when a listener or middleware raises.

Three kinds, one log line each: the database is unreachable (a "try again" answer the
user sees), a request whose content the listener could not read (400, no traceback; the
door already refused the wrong shapes, so this is the odd value inside a right one), and
anything else (a bug: the traceback, once)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse

from bot.gateway import SlackGateway
from bot.log_limit import LogLimiter
from bot.outage import OUTAGE_FIELD_TEXT, OUTAGE_TEXT, DatabaseOutage
from domain.clock import Clock
from storage.health import is_unavailable

log = logging.getLogger(__name__)
INPUT_ERRORS = (KeyError, TypeError, AttributeError, IndexError, ValueError, ValidationError)
# Bolt polls for a listener's ack every 10 ms and, when a listener fails after acking,
# overwrites the ack it has not seen yet with None once this handler returns: Slack then
# gets a 404 for a click that was acked. Waiting longer than one poll lets it see the ack.
BOLT_ACK_POLL_SECONDS = 0.05
ErrorHandler = Callable[..., Awaitable[BoltResponse | None]]


def error_handler(*, gateway: SlackGateway, outage: DatabaseOutage, clock: Clock) -> ErrorHandler:
    malformed = LogLimiter(log, clock=clock)
    unhandled = LogLimiter(log, clock=clock)

    async def on_error(
        error: Exception, body: dict[str, Any], response: BoltResponse | None
    ) -> BoltResponse | None:
        """`response` is None once the listener has acked: Slack has had its answer."""
        if response is None:
            await asyncio.sleep(BOLT_ACK_POLL_SECONDS)
        kind = str(body.get("type") or ("command" if "command" in body else "request"))
        if isinstance(error, BoltUnhandledRequestError):  # Bolt has set the 404
            unhandled.log(logging.INFO, "no listener for a %s request (%s)", kind, _listener_key(body))
            return None
        if is_unavailable(error):
            outage.answered_during(error, kind)
            if response is not None:
                return outage_response(body)
            await _tell_clicker(gateway, body)
            return None
        if isinstance(error, INPUT_ERRORS):
            where = _where(error)
            malformed.log(logging.WARNING, "could not read a %s request: %s (%s)", kind, _name(error), where)
            return BoltResponse(status=400, body="") if response is not None else None
        log.error("unhandled error for %s: %s", kind, error, exc_info=error)
        return None

    return on_error


def outage_response(body: dict[str, Any]) -> BoltResponse:
    """The ack that tells the person the database is unreachable and nothing changed."""
    if body.get("type") == "view_submission":
        block = _first_field(body.get("view") or {})
        if block is None:
            return BoltResponse(status=200, body="")
        answer: dict[str, Any] = {"response_action": "errors", "errors": {block: OUTAGE_FIELD_TEXT}}
    elif "command" in body:
        answer = {"response_type": "ephemeral", "text": OUTAGE_TEXT}
    else:
        # An event: a non-200 makes Slack deliver it again later, when we may be back.
        return BoltResponse(status=503, body="")
    return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": ["application/json"]})


async def _tell_clicker(gateway: SlackGateway, body: dict[str, Any]) -> None:
    """After the ack (a click, a modal command) only a message reaches the person."""
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    channel = (
        body.get("channel_id")
        or (body.get("channel") or {}).get("id")
        or (body.get("container") or {}).get("channel_id")
    )
    if user and channel:
        await gateway.ephemeral_now(channel=str(channel), user=str(user), text=OUTAGE_TEXT)


def _first_field(view: dict[str, Any]) -> str | None:
    """The block an inline error can sit on: the view's first input block."""
    for block in view.get("blocks") or []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    values = (view.get("state") or {}).get("values") or {}
    return str(next(iter(values))) if values else None


def _listener_key(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    key = (
        body.get("command")
        or (body.get("view") or {}).get("callback_id")
        or body.get("callback_id")
        or actions[0].get("action_id")
        or (body.get("event") or {}).get("type")
    )
    return str(key)[:60]


def _name(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:120]}"


def _where(error: Exception) -> str:
    """File and line that raised, so a bug still shows where it is without a traceback."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None:
        return "unknown place"
    return f"{os.path.basename(trace.tb_frame.f_code.co_filename)}:{trace.tb_lineno}"
