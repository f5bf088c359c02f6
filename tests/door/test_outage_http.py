"""PostgreSQL goes away and comes back: meanwhile every Slack request gets a clear
"try again" (never a 500, which Slack shows as a bare dispatch_failed), /healthz and
/metrics say so, and the logs get a line, not a traceback per request."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bot.outage import OUTAGE_TEXT
from modals.intake import new_change_modal
from tests.support import pg_template
from tests.support.harness import Harness
from tests.support.slack_requests import (
    block_action,
    change_form_state,
    command_body,
    event_body,
    interaction_body,
    view_submission,
)

pytestmark = pytest.mark.postgres
FORM = "application/x-www-form-urlencoded"


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def ephemerals(harness: Harness, *, at_least: int) -> list[Any]:
    """chat.postEphemeral calls, waiting a moment for those sent after the ack."""
    for _ in range(200):
        calls = harness.slack.calls_to("chat.postEphemeral")
        if len(calls) >= at_least:
            return calls
        await asyncio.sleep(0.02)
    return harness.slack.calls_to("chat.postEphemeral")


async def metric(harness: Harness, name: str) -> float:
    text = await (await harness.http.get("/metrics")).text()
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_while_postgres_is_down_slack_is_told_to_try_again(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server = pg_template.shared_postgres()
    assert await metric(harness, "changebot_database_up") == 1
    blocks = new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]
    caplog.set_level(logging.INFO)
    server.halt()
    try:
        command = await harness.post(command_body("list", user="UREQ"), content_type=FORM)
        assert command.status == 200
        assert json.loads(await command.text()) == {"response_type": "ephemeral", "text": OUTAGE_TEXT}

        form = view_submission(
            "change_new", change_form_state(**harness.form()), user="UREQ", view_blocks=blocks
        )
        submitted = await harness.post(interaction_body(form), content_type=FORM)
        assert submitted.status == 200
        answer = json.loads(await submitted.text())
        assert answer["response_action"] == "errors"
        [(block, text)] = answer["errors"].items()
        assert block == blocks[[b.get("type") for b in blocks].index("input")]["block_id"]
        assert "Submit again" in text

        click = block_action("change_approve", "CR-2026-0001", user="ULEAD1", trigger_id="t-1")
        clicked = await harness.post(interaction_body(click), content_type=FORM)
        assert clicked.status == 200
        [told] = await ephemerals(harness, at_least=1)
        assert told.params["user"] == "ULEAD1" and told.params["text"] == OUTAGE_TEXT

        mention = event_body(
            {"type": "app_mention", "user": "UREQ", "text": "hi", "channel": "C1"}, event_id="Ev1"
        )
        event = await harness.post(mention, content_type="application/json")
        assert event.status == 503  # Slack delivers it again later

        assert (await harness.http.get("/calendar.ics?token=abc")).status == 503
        health = await harness.http.get("/healthz")
        assert health.status == 503 and (await health.json())["database"] is False
        assert await metric(harness, "changebot_database_up") == 0
        assert await metric(harness, "changebot_database_outage_answers_total") == 4
    finally:
        server.resume()

    assert (await (await harness.http.get("/healthz")).json())["database"] is True  # (no scheduler here)
    assert await metric(harness, "changebot_database_up") == 1
    assert (await harness.command("list", user="UREQ"))["response_type"] == "ephemeral"
    assert not loud(caplog)
    outage_lines = [r.getMessage() for r in caplog.records if r.name == "bot.outage"]
    assert len(outage_lines) == 2, outage_lines  # one when it began, one when it ended
    assert "reachable again" in outage_lines[-1]
