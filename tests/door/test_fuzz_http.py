"""Fuzzed modal submissions and slash-command texts through the HTTP door: never a 5xx,
every refusal an inline error on a block the view has, and user text never pings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modals.intake import new_change_modal
from tests.support.harness import Harness
from tests.support.slack_requests import change_form_state, command_body

PINGS = ["<!channel>", "<!here>", "<!everyone>", "<@UFUZZ>", "<#CFUZZ>", "<!subteam^SFUZZ>"]
pytestmark = pytest.mark.filterwarnings("ignore")

texts = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.builds(lambda a, p, b: a + p + b, st.text(max_size=20), st.sampled_from(PINGS), st.text(max_size=20)),
    st.text(min_size=2400, max_size=3200, alphabet="ab<>&!@ "),
)
choices = st.one_of(st.none(), st.sampled_from(["standard", "normal", "major", "emergency", "bogus", ""]))
levels = st.one_of(st.none(), st.sampled_from(["low", "medium", "high", "critical", "x"]))
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def sent_text(harness: Harness) -> str:
    """Everything Slack would render as mrkdwn (a modal's prefilled input is plain text)."""
    return json.dumps([c.params for c in harness.slack.calls if c.method != "views.open"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@FUZZ
@given(
    title=texts,
    description=texts,
    rollback=texts,
    category=choices,
    impact=levels,
    likelihood=levels,
    services=st.lists(st.sampled_from(["api-server", "database", "mainframe", "<!here>"]), max_size=3),
    start=st.one_of(st.none(), st.integers(-(10**6), 10**7)),
    length=st.integers(-7200, 10**6),
    catalog=st.one_of(st.none(), st.sampled_from(["security-patch", "nope"])),
    downtime=st.one_of(st.none(), st.text(max_size=6)),
)
async def test_fuzzed_change_forms(
    harness: Harness,
    title: Any,
    description: Any,
    rollback: Any,
    category: Any,
    impact: Any,
    likelihood: Any,
    services: list[str],
    start: Any,
    length: int,
    catalog: Any,
    downtime: Any,
) -> None:
    now = int(harness.clock.now().timestamp())
    fields = {
        "title": title,
        "description": description,
        "rollback_plan": rollback,
        "category": category,
        "impact": impact,
        "likelihood": likelihood,
        "services": services,
        "catalog": catalog,
        "starts_at": None if start is None else now + start,
        "ends_at": None if start is None else now + start + length,
        "downtime": downtime,
    }
    view_blocks = new_change_modal(harness.bot.policy, now=harness.clock.now())["blocks"]
    present = {b.get("block_id") for b in view_blocks}
    answer = await harness.submit(
        "change_new", change_form_state(**fields), user="UREQ", view_blocks=view_blocks
    )
    if answer:
        assert answer["response_action"] in ("errors", "update")
        if answer["response_action"] == "errors":
            assert answer["errors"] and set(answer["errors"]) <= present
    text = sent_text(harness)
    for ping in PINGS:
        assert ping not in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda w, p: f"{w} {p}",
            st.sampled_from(
                [
                    "new",
                    "show",
                    "list",
                    "help",
                    "calendar",
                    "cancel",
                    "reschedule",
                    "freeze",
                    "incident",
                    "report",
                    "emergency",
                    "zzz",
                ]
            ),
            st.one_of(st.text(max_size=40), st.sampled_from([*PINGS, "CR-2026-0001", "start", "week"])),
        ),
    )
)
async def test_fuzzed_slash_commands(harness: Harness, text: str) -> None:
    response = await harness.post(
        command_body(text, user="UREQ"), content_type="application/x-www-form-urlencoded"
    )
    assert response.status == 200, await response.text()
    body = await response.text()
    await harness.settle()
    for ping in PINGS:
        assert ping not in body and ping not in sent_text(harness)
