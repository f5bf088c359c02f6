"""The template's further fields, required fields and lead times through the real HTTP
door, on a policy with the documents' defaults (a test plan for normal and major changes,
24 hours' notice for normal ones): the form, its inline errors, the card, `/change show`,
the stakeholders' notices and the ICS feed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import icalendar
import pytest

from modals.intake import new_change_modal
from tests.support.harness import Harness
from tests.support.policy_fixture import RULES_OFF, TEST_POLICY
from tests.support.slack_requests import change_form_state

HOSTILE = "<!channel> <@U123> <https://evil.example|ZZFORGED> &lt;ZZPRE *b*"
RAW = ("<!channel", "<@U123", "<https://evil", "ZZFORGED>")
NEW_BLOCKS = {
    "links": "plain_text_input",
    "success_criteria": "plain_text_input",
    "dependencies": "plain_text_input",
    "rollback_duration": "number_input",
    "rollback_triggers": "plain_text_input",
    "stakeholders": "multi_users_select",
    "stakeholder_channels": "multi_conversations_select",
}


@pytest.fixture
def policy_text() -> str:
    return TEST_POLICY.replace(RULES_OFF, "")


def modal_blocks(harness: Harness) -> list[dict[str, Any]]:
    return new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]


def full_form(harness: Harness, **overrides: Any) -> dict[str, Any]:
    """A valid normal change with every template field; `...` leaves a field out."""
    fields: dict[str, Any] = {
        "test_plan": "Smoke tests on staging.",
        "links": "https://github.com/org/api/pull/7\n\nhttps://grafana.example/d/api?from=now-1h&to=now",
        "success_criteria": HOSTILE,
        "dependencies": HOSTILE,
        "rollback_duration": "15",
        "rollback_triggers": HOSTILE,
        "stakeholders": ["UPRODUCT"],
        "stakeholder_channels": ["CSUPPORT"],
    }
    return harness.form(**(fields | overrides))


async def submit(harness: Harness, fields: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await harness.submit(
        "change_new", change_form_state(**fields), user="UREQ", view_blocks=modal_blocks(harness), **kwargs
    )
    return answer


def posted(harness: Harness) -> str:
    return json.dumps([c.params for c in harness.slack.calls_to("chat.postMessage")])


async def test_the_form_has_the_templates_fields_and_says_what_the_policy_requires(harness: Harness) -> None:
    await harness.command("new", user="UREQ")
    view = (await harness.slack.wait_for("views.open"))[0].params["view"]
    blocks = {b.get("block_id"): b for b in view["blocks"]}

    assert {name: blocks[name]["element"]["type"] for name in NEW_BLOCKS} == NEW_BLOCKS
    assert all(blocks[name]["optional"] for name in NEW_BLOCKS)
    assert blocks["links"]["element"]["multiline"] is True
    assert blocks["stakeholder_channels"]["element"]["filter"] == {
        "include": ["public", "private"],
        "exclude_bot_users": True,
    }
    assert (
        blocks["test_plan"]["hint"]["text"]
        == "How you verify it worked. Required for normal and major changes."
    )


async def test_a_change_with_every_field_is_stored_shown_and_escaped(harness: Harness) -> None:
    assert await submit(harness, full_form(harness)) == {}

    draft = (await harness.change("CR-2026-0001")).draft
    assert draft.links == (
        "https://github.com/org/api/pull/7",
        "https://grafana.example/d/api?from=now-1h&to=now",
    )
    assert (draft.success_criteria, draft.dependencies, draft.rollback_triggers) == (
        HOSTILE,
        HOSTILE,
        HOSTILE,
    )
    assert (draft.stakeholders, draft.rollback_minutes) == (("UPRODUCT", "CSUPPORT"), 15)
    card = posted(harness)
    assert "<https://github.com/org/api/pull/7|github.com/org/api/pull/7>" in card
    assert "<https://grafana.example/d/api?from=now-1h&amp;to=now|" in card
    assert "<@UPRODUCT>, <#CSUPPORT>" in card and "Rolling back takes about 15 min." in card
    assert not any(raw in card for raw in RAW)

    shown = json.dumps(await harness.command("show CR-2026-0001", user="USOMEONE"))
    assert (
        "*Success criteria*" in shown and "*Dependencies*" in shown and "github.com/org/api/pull/7" in shown
    )
    assert not any(raw in shown for raw in RAW)


BAD = [
    ({"links": "https://ok.example\njavascript:alert(1)"}, "links", "Link 2"),
    ({"links": "<https://evil.example|ZZFORGED>"}, "links", "not a web address"),
    ({"rollback_duration": "-3"}, "rollback_duration", "between 0"),
    ({"test_plan": ...}, "test_plan", "Normal changes need a test plan."),
]


@pytest.mark.parametrize(("overrides", "field", "fragment"), BAD, ids=[b[1] for b in BAD])
async def test_bad_fields_get_inline_errors_and_nothing_is_stored(
    harness: Harness, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    answer = await submit(harness, full_form(harness, **overrides))

    assert answer["response_action"] == "errors"
    assert fragment in answer["errors"][field]
    with pytest.raises(Exception, match="does not exist"):
        await harness.change("CR-2026-0001")
    assert not harness.slack.calls_to("chat.postMessage")


async def test_sooner_than_the_lead_time_is_refused_inline_unless_an_exception_is_asked(
    harness: Harness,
) -> None:
    soon = int((harness.clock.now() + timedelta(hours=3)).timestamp())
    fields = full_form(harness, starts_at=soon, ends_at=soon + 3600)

    refused = await submit(harness, fields)

    assert refused["response_action"] == "errors"
    assert "Normal changes are filed at least 24 hours before they start." in refused["errors"]["starts_at"]
    assert "Next allowed start" in refused["errors"]["starts_at"]
    state = change_form_state(**fields)
    state["exception"] = {"exception": {"type": "checkboxes", "selected_options": [{"value": "requested"}]}}
    state["exception_reason"] = {
        "exception_reason": {"type": "plain_text_input", "value": "Cert expires tonight"}
    }
    filed = await harness.submit("change_new", state, user="UREQ", view_blocks=modal_blocks(harness))
    assert filed == {}
    change = await harness.change("CR-2026-0001")
    assert [s.purpose for s in change.steps] == ["", "exception"]
    assert ":warning: Short notice: Normal changes are filed at least 24 hours" in posted(harness)


async def test_the_conflict_warning_keeps_the_new_fields_so_slack_keeps_what_was_typed(
    harness: Harness,
) -> None:
    assert await submit(harness, full_form(harness)) == {}
    first = await submit(harness, full_form(harness, title="Second"), confirm_conflicts=False)

    assert first["response_action"] == "update"
    again = {b.get("block_id"): b.get("element") for b in first["view"]["blocks"]}
    opened = {b.get("block_id"): b.get("element") for b in modal_blocks(harness)}
    assert {name: again[name] for name in NEW_BLOCKS} == {name: opened[name] for name in NEW_BLOCKS}


async def test_stakeholders_hear_at_t_minus_24h_and_on_completion(harness: Harness) -> None:
    fields = full_form(harness, impact="low", likelihood="low", implementer="UIMPL")
    assert await submit(harness, fields) == {}
    change = await harness.change("CR-2026-0001")

    await harness.advance_to(change.draft.starts_at - timedelta(hours=24))
    assert len(harness.posts_to("UPRODUCT")) == 1 and len(harness.posts_to("CSUPPORT")) == 1
    assert len(harness.posts_to("CSTAKE")) == 1  # the policy's channel for normal changes too

    await harness.advance_to(change.draft.starts_at + timedelta(minutes=5))
    await harness.click("change_start", change.id, user="UIMPL")
    await harness.click("change_complete", change.id, user="UIMPL")
    assert len(harness.posts_to("UPRODUCT")) == 2 and len(harness.posts_to("CSUPPORT")) == 2
    assert "completed" in json.dumps(harness.posts_to("UPRODUCT")[-1].params)


async def test_the_ics_feed_carries_the_links(harness: Harness) -> None:
    assert await submit(harness, full_form(harness)) == {}
    token = await harness.bot.context.gateway.repository.feed_token(now=harness.clock.now())

    response = await harness.http.get(f"/calendar.ics?token={token}")

    event = icalendar.Calendar.from_ical(await response.read()).walk("VEVENT")[0]
    assert "Links:\nhttps://github.com/org/api/pull/7\nhttps://grafana.example/d/api" in str(
        event["description"]
    )
    assert [str(a) for a in event["attach"]] == [
        "https://github.com/org/api/pull/7",
        "https://grafana.example/d/api?from=now-1h&to=now",
    ]
