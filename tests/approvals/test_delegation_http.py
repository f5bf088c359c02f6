"""`/change delegate` and review steps added by rules, over the real HTTP door."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.enums import Status
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

CR = "CR-2026-0001"
# The CTO is an architect too, as is ULEAD1: the one can hold the other's approvals.
ROLES = "  cto: [UCTO]\n  architects: [UCTO, ULEAD1]\n  dba: [UDBA]\n"
RULES = """  extra_steps:
    - when: {services: [database]}
      role: dba
"""


@pytest.fixture
def policy_text() -> str:
    text = TEST_POLICY.replace("  cto: [UCTO]\n", ROLES)
    return text.replace("  by_category:\n", RULES + "  by_category:\n")


def answer_text(answer: dict[str, Any]) -> str:
    return " ".join(b["text"]["text"] for b in answer["blocks"] if b.get("text"))


def cards_to(harness: Harness, user: str) -> list[str]:
    return [
        json.dumps(c.params["blocks"], ensure_ascii=False)
        for c in harness.posts_to(user)
        if c.params.get("blocks")
    ]


async def test_a_delegate_gets_the_approval_and_may_sign_it(harness: Harness) -> None:
    answer = await harness.command("delegate <@ULEAD1|lead> until 2026-12-24", user="UCTO")
    assert "Through 2026-12-24, <@ULEAD1> may approve what you may" in answer_text(answer)
    [told] = [
        c.params["text"]
        for c in harness.posts_to("ULEAD1")
        if "handed you their approvals" in c.params["text"]
    ]
    assert told.startswith(":handshake: <@UCTO> is away")

    await harness.file_change(impact="critical", likelihood="medium")  # critical: the CTO approves
    assert cards_to(harness, "UCTO") == []  # away: their approval requests go to the delegate
    [card] = cards_to(harness, "ULEAD1")
    assert "0/1 · can approve: <@ULEAD1> (for <@UCTO>)" in card

    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    change = await harness.change(CR)
    assert change.status is Status.APPROVED
    assert [(a.user, a.step_index) for a in change.approvals] == [("ULEAD1", 0)]


async def test_delegate_off_gives_the_approvals_back(harness: Harness) -> None:
    await harness.command("delegate <@ULEAD1> until 2026-12-24", user="UCTO")
    answer = await harness.command("delegate off", user="UCTO")
    assert "Your approvals are yours again; <@ULEAD1> was told." in answer_text(answer)
    assert any("ended their delegation" in c.params["text"] for c in harness.posts_to("ULEAD1"))

    await harness.file_change(impact="critical", likelihood="medium")
    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL
    assert len(cards_to(harness, "UCTO")) == 1


@pytest.mark.parametrize(
    ("user", "text", "expected"),
    [
        (
            "UCTO",
            "delegate <@UREQ> until 2026-12-24",
            "Not delegated to <@UREQ>: they are not a member of your roles (Architects, CTO).",
        ),
        (
            "UCTO",
            "delegate <@UCTO> until 2026-12-24",
            "Not delegated to <@UCTO>: you cannot delegate to yourself.",
        ),
        ("UCTO", "delegate <@ULEAD1> until 2026-11-01", "Not delegated to <@ULEAD1>: that day is past"),
        (
            "UREQ",
            "delegate <@ULEAD1> until 2026-12-24",
            "Not delegated to <@ULEAD1>: you are in none of the policy's roles",
        ),
        ("UCTO", "delegate <@ULEAD1> 2026-12-24", "Use `/change delegate @someone until 2026-12-24`"),
        ("UCTO", "delegate <!channel> until 2026-12-24", "Use `/change delegate @someone until 2026-12-24`"),
        ("UCTO", "delegate off", "Nothing to end: you have no delegation in force."),
    ],
)
async def test_a_delegation_is_refused_in_one_line(
    harness: Harness, user: str, text: str, expected: str
) -> None:
    answer = await harness.command(text, user=user)
    assert len(answer["blocks"]) == 1
    assert expected in answer_text(answer)
    assert "<!channel>" not in json.dumps(answer)


async def test_a_rule_adds_a_review_step_the_quorum_needs(harness: Harness) -> None:
    await harness.file_change(services=["database"])  # medium risk: a tech lead, and the DBA by rule
    card = json.dumps(harness.posts_to("CCHANGES")[0].params["blocks"], ensure_ascii=False)
    assert "(review added by rule) 0/1 · can approve: <@UDBA>" in card
    assert len(cards_to(harness, "UDBA")) == 1

    await harness.click("change_approve", CR, user="ULEAD2", channel="D_ULEAD2")
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL
    await harness.click("change_approve", CR, user="UDBA", channel="D_UDBA")
    assert (await harness.change(CR)).status is Status.APPROVED
    submitted = (await harness.change(CR)).audit[0]
    assert submitted.details["steps"] == [{"role": "tech_lead", "count": 1}, {"role": "dba", "count": 1}]
