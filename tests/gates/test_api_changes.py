"""`POST /api/v1/changes` and `GET /api/v1/changes/{id}` through the running bot's HTTP
door: the form's validation and policy, conflicts, bad bodies, and a filed change
announced and routed as the form's are."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.change_json import change_as_json
from tests.support.api_calls import Pipeline, make_token
from tests.support.harness import Harness
from tooling.emulator import SlackEmulator

CR = "CR-2026-0001"


@pytest.fixture
async def pipeline(harness: Harness) -> Pipeline:
    return Pipeline(harness, await make_token(harness))


def slack_shape(harness: Harness, since: int) -> list[tuple[str, str]]:
    """Where messages were posted (not what they said), after call `since`."""
    calls = harness.slack.calls[since:]
    return sorted((c.method, str(c.params.get("channel", ""))) for c in calls if c.method.startswith("chat."))


async def test_a_filed_change_is_201_as_changes_show_prints_it_and_is_announced_like_the_form(
    harness: Harness, pipeline: Pipeline
) -> None:
    status, body = await pipeline.file()

    assert status == 201, body
    assert (body["id"], body["status"], body["requester"]) == (CR, "pending_approval", "UREQ")
    assert body["source"] == {
        "kind": "github",
        "url": "https://github.com/example-org/api/actions/runs/42",
        "ref": "v2.4",
    }
    stored = json.loads(json.dumps(change_as_json(await harness.change(CR))))
    assert await pipeline.get(f"/api/v1/changes/{CR}") == (200, stored)
    assert await pipeline.get(f"/api/v1/changes/{CR.lower()}") == (200, stored)
    by_api = slack_shape(harness, 0)
    assert ("chat.postMessage", "CCHANGES") in by_api
    assert any(
        c.method == "chat.postMessage" and c.params["channel"] != "CCHANGES" for c in harness.slack.calls
    )
    mark = len(harness.slack.calls)
    later = int((harness.clock.now() + timedelta(days=4)).timestamp())
    assert await harness.file_change(services=["database"], starts_at=later, ends_at=later + 3600) == {}
    assert slack_shape(harness, mark) == by_api  # the form's filing talks to Slack the same way


async def test_get_unknown_or_malformed_ids_is_404(pipeline: Pipeline) -> None:
    for change_id in ("CR-2026-0099", "x" * 300, "CR%20;DROP", "%00"):
        status, body = await pipeline.get(f"/api/v1/changes/{change_id}")
        assert (status, body) == (404, {"error": "no such change"})


async def test_each_bad_field_is_a_422_under_its_json_name_and_nothing_is_filed(
    harness: Harness, pipeline: Pipeline
) -> None:
    status, body = await pipeline.file(
        title="",
        category="sideways",
        services=["api-server", "mainframe"],
        starts_at="2026-11-25T10:00:00",
        ends_at="tomorrow",
        rollback_plan=42,
        colour="blue",
    )

    assert status == 422
    errors = body["errors"]
    assert set(errors) == {"title", "category", "services", "starts_at", "ends_at", "rollback_plan", "colour"}
    assert "UTC offset" in errors["starts_at"]
    assert errors["colour"] == "Unknown field."
    assert errors["rollback_plan"] == "Must be a string."
    status, body = await pipeline.file(category="standard", standard_procedure="reboot-the-world")
    assert status == 422 and "pre-approved procedure" in body["errors"]["standard_procedure"]
    status, body = await pipeline.file(starts_in=timedelta(days=-1))
    assert status == 422 and "past" in body["errors"]["starts_at"]
    status, body = await pipeline.file(source={"kind": "Git Hub"})
    assert status == 422 and set(body["errors"]) == {"source"}
    status, body = await pipeline.file(title="\x00null", requester="not a user")
    assert status == 422 and set(body["errors"]) == {"title", "requester"}
    assert await pipeline.get(f"/api/v1/changes/{CR}") == (404, {"error": "no such change"})
    assert harness.slack.calls_to("chat.postMessage") == []


async def test_a_standard_change_of_the_catalog_is_approved_at_once(pipeline: Pipeline) -> None:
    status, body = await pipeline.file(
        category="standard",
        standard_procedure="security-patch",
        impact=None,
        likelihood=None,
        rollback_plan=None,
        description=None,
    )
    assert status == 201, body
    assert (body["status"], body["catalog_id"]) == ("approved", "security-patch")


async def test_the_requester_may_be_an_email_slack_knows(
    harness: Harness, pipeline: Pipeline, emulator: SlackEmulator
) -> None:
    emulator.users = {"UALICE": {"email": "alice@example.com"}}

    status, body = await pipeline.file(requester="nobody@example.com")
    assert (status, body) == (422, {"errors": {"requester": "No Slack user has this email."}})
    status, body = await pipeline.file(requester="alice@example.com")
    assert status == 201 and body["requester"] == "UALICE"
    looked_up = [c.params["email"] for c in harness.slack.calls_to("users.lookupByEmail")]
    assert looked_up == ["nobody@example.com", "alice@example.com"]


async def test_an_overlap_is_409_unless_confirmed(harness: Harness, pipeline: Pipeline) -> None:
    assert (await pipeline.file())[0] == 201

    status, body = await pipeline.file(title="Rotate the gateway certificates")
    assert status == 409
    first = await harness.change(CR)
    assert body == {
        "conflicts": [
            {
                "id": CR,
                "title": "Upgrade the API gateway",
                "window": {
                    "starts_at": first.draft.starts_at.isoformat(),
                    "ends_at": first.draft.ends_at.isoformat(),
                },
                "services": ["api-server"],
            }
        ]
    }
    status, body = await pipeline.file(title="Rotate the gateway certificates", confirm_conflicts=True)
    assert status == 201 and body["conflicts"] == [CR]
    assert (await pipeline.file(confirm_conflicts="yes"))[1] == {
        "errors": {"confirm_conflicts": "Must be true or false."}
    }


async def test_bodies_that_are_not_json_objects_or_too_big_are_refused(pipeline: Pipeline) -> None:
    assert await pipeline.post("/api/v1/changes", data=b"{not json") == (
        400,
        {"error": "the body is not JSON"},
    )
    assert await pipeline.post("/api/v1/changes", [1, 2]) == (
        400,
        {"error": "the body must be a JSON object"},
    )
    assert (await pipeline.post("/api/v1/changes", data=b"[" * 100_000))[0] in (400, 413)
    assert (await pipeline.post("/api/v1/changes", data=b"[" * 50_000 + b"]" * 10_000))[0] == 400
    status, body = await pipeline.post("/api/v1/changes", {"description": "x" * 70_000})
    assert status == 413 and "over" in body["error"]


async def test_a_pipeline_filing_an_emergency_declares_it_as_the_form_does(
    harness: Harness, pipeline: Pipeline
) -> None:
    declared = harness.clock.now()
    status, body = await pipeline.file(
        category="emergency", impact="critical", implementation_plan="Roll back"
    )

    assert status == 201, body
    change = await harness.change(CR)
    assert (change.draft.category.value, change.status.value, change.post_state.value) == (
        "emergency",
        "approved",
        "pending",
    )
    assert change.draft.severity == "P0" and change.draft.source is not None
    assert change.draft.source.kind == "github" and change.draft.starts_at == declared
    assert "emergency_declared" in [e.action.value for e in change.audit]
    assert ("chat.postMessage", "CINCIDENTS") in slack_shape(harness, 0)
    status, body = await pipeline.file(category="emergency")  # no fix said: on the form's field
    assert status == 422 and set(body["errors"]) == {"implementation_plan"}
