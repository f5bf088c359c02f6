"""A change's gate and a deploy's events through the REST API: go, wait and stop, the
long-poll woken by an approval in Slack, and events moving the change as the buttons do."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from domain.enums import Status
from domain.model import AuditAction
from tests.support.api_calls import Pipeline, make_token
from tests.support.harness import Harness

CR = "CR-2026-0001"
SOON = timedelta(minutes=10)  # inside the gate's 30 minutes before the window


@pytest.fixture
async def pipeline(harness: Harness) -> Pipeline:
    return Pipeline(harness, await make_token(harness))


async def test_the_gate_waits_for_approval_then_says_go_with_the_card_link(
    harness: Harness, pipeline: Pipeline
) -> None:
    assert (await pipeline.file(starts_in=SOON))[0] == 201

    status, body = await pipeline.gate(CR, "?service=api-server")
    assert status == 200
    assert (body["decision"], body["change"]) == ("wait", CR)
    assert "waiting for approval: Tech lead 0/1" in body["reason"]
    assert body["url"].startswith("https://")
    await harness.click("change_approve", CR, user="ULEAD1")
    status, body = await pipeline.gate(CR)
    assert (status, body["decision"]) == (200, "go")
    assert "is approved" in body["reason"]
    status, body = await pipeline.gate(CR, "?service=database")
    assert (body["decision"], body["reason"]) == ("stop", f"service 'database' is not in {CR} (api-server)")
    asked = [e.details for e in (await harness.change(CR)).audit if e.action is AuditAction.GATE_ANSWERED]
    assert [(a["decision"], a["asked_by"]) for a in asked] == [
        ("wait", "api:deploy-bot"),
        ("go", "api:deploy-bot"),
        ("stop", "api:deploy-bot"),
    ]


async def test_a_long_poll_answers_soon_after_the_approval(harness: Harness, pipeline: Pipeline) -> None:
    assert (await pipeline.file(starts_in=SOON))[0] == 201

    began = time.monotonic()
    asking = asyncio.create_task(pipeline.gate(CR, "?wait=20"))
    await asyncio.sleep(0.3)
    assert not asking.done()
    await harness.click("change_approve", CR, user="ULEAD2")
    status, body = await asyncio.wait_for(asking, 5)
    assert (status, body["decision"]) == (200, "go")
    assert time.monotonic() - began < 5
    status, body = await pipeline.gate(CR, "?wait=0")
    assert body["decision"] == "go"


async def test_bad_gate_questions_are_refused(pipeline: Pipeline) -> None:
    assert await pipeline.gate("CR-2026-0042") == (404, {"error": "no such change"})
    assert (await pipeline.file(starts_in=SOON))[0] == 201
    for query in ("?wait=soon", "?wait=-1", "?wait=1e3"):
        status, body = await pipeline.gate(CR, query)
        assert status == 422 and set(body["errors"]) == {"wait"}
    status, body = await pipeline.gate(CR, "?service=" + "s" * 101)
    assert status == 422 and set(body["errors"]) == {"service"}
    status, body = await pipeline.gate(CR, "?wait=1")
    assert body["decision"] == "wait"


async def test_events_move_the_change_as_the_buttons_do_and_refusals_are_409(
    harness: Harness, pipeline: Pipeline
) -> None:
    assert (await pipeline.file(starts_in=SOON))[0] == 201
    status, body = await pipeline.event(CR, "started")
    assert (status, body) == (409, {"error": "the change is pending approval, so it cannot start"})
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL

    await harness.click("change_approve", CR, user="ULEAD1")
    assert (await pipeline.event(CR, "finished"))[1] == {
        "errors": {"event": "Must be one of: started, completed, failed, rolled_back."}
    }
    assert set(
        (await pipeline.post(f"/api/v1/changes/{CR}/events", {"event": "started", "by": "me"}))[1]["errors"]
    ) == {"by"}
    await harness.advance_to((await harness.change(CR)).draft.starts_at - timedelta(minutes=5))
    status, body = await pipeline.event(CR, "started", notes="Deploy run 42")
    assert (status, body["status"]) == (200, "in_progress")
    status, body = await pipeline.event(CR, "failed")
    assert status == 422 and set(body["errors"]) == {"notes"}
    status, body = await pipeline.event(CR, "completed")
    assert (status, body["status"]) == (200, "completed")
    change = await harness.change(CR)
    moves = [e.action for e in change.audit if e.actor == "api:deploy-bot"]
    assert moves == [AuditAction.ACTION_REFUSED, AuditAction.STARTED, AuditAction.COMPLETED]
    card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"]
    assert card, "the card copies are updated as after a button"
    assert await pipeline.event("CR-2026-0077", "started") == (404, {"error": "no such change"})
