"""Role labels from the policy (`role_labels: {tech_lead: "Tech Lead"}`): checked with the
line of any mistake, shown wherever a role is, the acronym rule as the fallback; and who
hears about a change being sent back, and who `/change show` says can still approve."""

from __future__ import annotations

import json

import pytest

from domain.policy import PolicyError, PolicyProblem
from domain.policy_loader import parse_policy
from domain.role_labels import ROLE_LABEL_MAX, role_label
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY

CR = "CR-2026-0001"
HOSTILE = "<!channel> *bold* <@UEVIL>"
ANCHOR = "\nservices: [api-server"
LABELLED = TEST_POLICY.replace(
    ANCHOR, '\nrole_labels:\n  tech_lead: "Platform TL"\n  cto: Chief\n' + ANCHOR, 1
)


def with_labels(yaml: str) -> str:
    assert TEST_POLICY.count(ANCHOR) == 1
    return TEST_POLICY.replace(ANCHOR, "\nrole_labels:\n" + yaml.rstrip("\n") + ANCHOR, 1)


def line_of(text: str, needle: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def only_problem(text: str) -> PolicyProblem:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.yml")
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


def test_the_policy_label_wins_and_the_acronym_rule_is_the_fallback() -> None:
    labels = parse_policy(LABELLED).role_labels
    assert labels == {"tech_lead": "Platform TL", "cto": "Chief"}
    assert role_label("tech_lead", labels) == "Platform TL"
    assert role_label("engineering_manager", labels) == "Engineering manager"
    assert role_label("sre_lead") == "SRE lead"
    assert parse_policy(TEST_POLICY).role_labels == {}


def test_a_label_for_an_unknown_role_points_at_its_line() -> None:
    text = with_labels("  vp_engineering: VP Engineering\n")
    problem = only_problem(text)
    assert problem.path == "role_labels.vp_engineering"
    assert problem.line == line_of(text, "vp_engineering: VP Engineering")
    assert "unknown role 'vp_engineering'" in problem.message


@pytest.mark.parametrize("label", ['""', '"' + "x" * (ROLE_LABEL_MAX + 1) + '"', '"two\\nlines"'])
def test_a_blank_long_or_multiline_label_points_at_its_line(label: str) -> None:
    text = with_labels(f"  cto: {label}\n")
    problem = only_problem(text)
    assert problem.path == "role_labels.cto"
    assert problem.line == line_of(text, f"  cto: {label}")


@pytest.mark.parametrize("policy_text", [LABELLED])
async def test_cards_and_messages_show_the_configured_label(harness: Harness) -> None:
    await harness.file_change()
    card = json.dumps(harness.posts_to("CCHANGES")[0].params["blocks"])
    assert "Platform TL" in card and "Tech lead" not in card

    await harness.click("change_request_changes", CR, user="ULEAD1", channel="D_ULEAD1")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "Add a canary."}}}
    await harness.submit(
        view["callback_id"], values, user="ULEAD1", private_metadata=view["private_metadata"]
    )
    asked = [
        c.params["text"] for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ"
    ]
    assert any("approving it as Platform TL" in text for text in asked)


async def test_the_implementer_hears_that_changes_were_requested(harness: Harness) -> None:
    await harness.file_change(implementer="UIMPL")
    await harness.click("change_request_changes", CR, user="ULEAD1", channel="D_ULEAD1")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    values = {"reason": {"reason": {"type": "plain_text_input", "value": HOSTILE}}}
    meta = view["private_metadata"]
    assert await harness.submit(view["callback_id"], values, user="ULEAD1", private_metadata=meta) == {}

    told = [c.params for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UIMPL"]
    assert len(told) == 1
    raw = json.dumps(told[0])
    assert "&lt;!channel&gt;" in told[0]["text"] and "<!channel>" not in raw and "<@UEVIL>" not in raw
    assert "You implement it; <@UREQ> edits it." in told[0]["text"]
    assert "change_edit" not in raw  # the requester edits, not the implementer


async def test_no_second_message_when_the_requester_implements(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_request_changes", CR, user="ULEAD1", channel="D_ULEAD1")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "Add a canary."}}}
    await harness.submit(
        view["callback_id"], values, user="ULEAD1", private_metadata=view["private_metadata"]
    )
    asked = [c for c in harness.slack.calls_to("chat.postMessage") if c.params["channel"] == "UREQ"]
    assert [c.params["text"].count("asks for changes") for c in asked][-1:] == [1]
    assert not any("You implement it" in c.params["text"] for c in asked)


async def test_change_show_names_who_can_still_approve(harness: Harness) -> None:
    await harness.file_change()
    pending = json.dumps((await harness.command(f"show {CR}", user="USOMEONE"))["blocks"])
    assert "can approve: <@ULEAD1>, <@ULEAD2>" in pending

    await harness.click("change_approve", CR, user="ULEAD1")
    approved = json.dumps((await harness.command(f"show {CR}", user="USOMEONE"))["blocks"])
    assert "can approve" not in approved
