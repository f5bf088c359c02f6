"""A change freeze is named on the cards of the changes it holds up: the card builder takes
the freezes in (plain values), and through the HTTP door a freeze starting or ending
refreshes the cards it covers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domain.calendar_policy import Freeze
from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.model import Change, ChangeDraft
from domain.policy_loader import parse_policy
from modals.cards import change_card
from tests.support.flows import approved_change
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

CR = "CR-2026-0001"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
ZONE = parse_policy(TEST_POLICY).zone
HOSTILE = "<!channel> *bold* <@UCTO> & <https://evil.example|click>"
LINE = ":no_entry_sign: *Change freeze*"


def a_change() -> Change:
    draft = ChangeDraft(
        title="Upgrade the gateway",
        category=Category.NORMAL,
        impact=Impact.LOW,
        likelihood=Likelihood.LOW,
        services=("api-server",),
        starts_at=NOW + timedelta(days=2),
        ends_at=NOW + timedelta(days=2, hours=1),
        description="Gateway 2.4",
    )
    return Change(
        id=CR,
        draft=draft,
        risk=Risk.LOW,
        status=Status.APPROVED,
        requester="UREQ",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        steps=(),
    )


def test_the_card_names_each_freeze_passed_in_escaped() -> None:
    until = Freeze(1, "Release " + HOSTILE, "UCTO", NOW, NOW + timedelta(days=3))
    lifted_only = Freeze(2, "", "UCTO", NOW)
    card = json.dumps(change_card(a_change(), zone=ZONE, freezes=(until, lifted_only)))

    assert f"{LINE} until <!date^{int(until.ended_at.timestamp())}^" in card  # type: ignore[union-attr]
    assert "Release &lt;!channel&gt; *bold* &lt;@UCTO&gt; &amp;" in card
    assert "<!channel>" not in card and "<@UCTO>" not in card and "<https://evil" not in card
    assert f"{LINE}: declared in Slack (it cannot start while the freeze is on)" in card
    assert LINE not in json.dumps(change_card(a_change(), zone=ZONE))


def channel_card(harness: Harness) -> str:
    updates = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"]
    return json.dumps(updates[-1].params["blocks"]) if updates else ""


async def test_a_freeze_shows_on_the_covered_card_and_leaves_it_when_lifted(harness: Harness) -> None:
    await approved_change(harness)  # Wed 25 Nov, 07:00 UTC
    [posted] = [c for c in harness.posts_to("CCHANGES") if CR in json.dumps(c.params.get("blocks") or [])]
    assert LINE not in json.dumps(posted.params["blocks"])

    await harness.command("freeze start 2026-11-27 " + HOSTILE, user="UCTO")
    await harness.settle()
    card = channel_card(harness)
    assert f"{LINE} until <!date^" in card and "(it cannot start while the freeze is on)" in card
    assert "&lt;!channel&gt; *bold* &lt;@UCTO&gt;" in card
    assert "<!channel>" not in card and "<@UCTO>" not in card

    await harness.command("freeze end", user="UCTO")
    await harness.settle()
    assert CR in channel_card(harness) and LINE not in channel_card(harness)


async def test_a_freeze_ending_as_planned_leaves_the_card(harness: Harness) -> None:
    start = int((harness.clock.now() + timedelta(days=2, hours=16)).timestamp())  # Wed 25 Nov 23:00
    await approved_change(harness, starts_at=start, ends_at=start + 3 * 3600)  # past the freeze's end
    await harness.command("freeze start 2026-11-26 code freeze", user="UCTO")
    await harness.settle()
    assert f"{LINE} until <!date^" in channel_card(harness)

    await harness.advance_to(datetime(2026, 11, 25, 23, 59, tzinfo=UTC))
    assert LINE in channel_card(harness)
    await harness.advance_to(datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    await harness.tick()
    assert CR in channel_card(harness) and LINE not in channel_card(harness)
