"""Steps many tests share: an approved CR, its window, a failure, a review, an emergency."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from domain.enums import Status
from tests.support.harness import Harness
from tests.support.slack_requests import change_form_state

CR = "CR-2026-0001"


async def approved(harness: Harness, **overrides: Any) -> None:
    start = int((harness.clock.now() + timedelta(hours=2)).timestamp())
    fields = {"impact": "low", "likelihood": "low", "starts_at": start, "ends_at": start + 3600, **overrides}
    if fields.get("category") == "major":
        fields["implementation_plan"] = "Blue/green."
    assert await harness.submit("change_new", change_form_state(**harness.form(**fields)), user="UREQ") == {}


async def to_window(harness: Harness, change_id: str = CR) -> None:
    """Move time to the change's window: an approved change only starts there."""
    await harness.advance_to((await harness.change(change_id)).draft.starts_at)


async def fail(harness: Harness, change_id: str = CR) -> None:
    await harness.click("change_fail", change_id, user="UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    assert (
        await harness.submit(
            "change_progress_notes",
            {"notes": {"notes": {"value": "Timeouts"}}},
            user="UREQ",
            private_metadata=meta,
        )
        == {}
    )


def review_state(**answers: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if "result" in answers:
        state["result"] = {
            "result": {"type": "static_select", "selected_option": {"value": answers.pop("result")}}
        }
    for key, value in answers.items():
        state[key] = {key: {"type": "plain_text_input", "value": value}}
    return state


def rendered(call: Any) -> str:
    return call.params.get("text", "") + json.dumps(call.params.get("blocks") or [])


def emergency_state(**overrides: Any) -> dict[str, Any]:
    fields = {
        "title": "Roll back checkout 4.2",
        "severity": "P1",
        "services": ["api-server"],
        "broken": "Checkout returns 500s since the 4.2 deploy",
        "fix": "Roll back to 4.1",
        "rollback": "Redeploy 4.2",
        "incident": "INC-42",
    }
    fields.update(overrides)
    state: dict[str, Any] = {}
    for key in ("title", "broken", "fix", "rollback", "incident"):
        if fields.get(key) is not None:
            state[key] = {key: {"type": "plain_text_input", "value": fields[key]}}
    if fields.get("severity"):
        state["severity"] = {
            "severity": {"type": "static_select", "selected_option": {"value": fields["severity"]}}
        }
    state["services"] = {
        "services": {
            "type": "multi_static_select",
            "selected_options": [{"value": s} for s in fields["services"]],
        }
    }
    return state


async def declare(harness: Harness, *, user: str = "UDEV", **overrides: Any) -> dict[str, Any]:
    answer = await harness.submit("change_emergency", emergency_state(**overrides), user=user)
    await harness.tick()
    return answer


async def approved_change(
    harness: Harness,
    *,
    starts_in: timedelta = timedelta(days=2),
    implementer: str | None = "UIMPL",
    **overrides: object,
) -> object:
    start = int((harness.clock.now() + starts_in).timestamp())
    fields = {
        "starts_at": start,
        "ends_at": start + 3600,
        "impact": "low",
        "likelihood": "low",
        "test_plan": "Smoke tests.",
        **overrides,
    }
    if implementer:
        fields["implementer"] = implementer
    state = change_form_state(**{k: v for k, v in harness.form(**fields).items() if k != "implementer"})
    if implementer:
        state["implementer"] = {"implementer": {"type": "users_select", "selected_user": implementer}}
    answer = await harness.submit("change_new", state, user="UREQ")
    assert answer == {}, answer
    change = await harness.change(CR)
    assert change.status is Status.APPROVED
    return change


def digests(harness: Harness) -> list[str]:
    return [
        json.dumps(c.params["blocks"])
        for c in harness.posts_to("CCHANGES")
        if c.params.get("blocks")
        and c.params["blocks"][0]["type"] == "header"
        and "calendar" in c.params["blocks"][0]["text"]["text"].lower()
    ]
