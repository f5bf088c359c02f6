"""What a team trips over first, through the HTTP door: the failed card keeps its implementer
and offers Rolled back, refusals answer in one line, `/change show` gives each audit entry's
details, sent notices are in the trail, and role labels read as people say them."""

from __future__ import annotations

import json
from datetime import timedelta

from domain.enums import Status
from modals.text import role_label
from tests.support.flows import CR, approved, rendered, to_window
from tests.support.harness import Harness

HOSTILE = "<!channel> *boom* <@UCTO> & <https://evil.example|click>"


def last_card(harness: Harness) -> str:
    return rendered(
        [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"][-1]
    )


async def report_with_notes(harness: Harness, button: str, notes: str) -> None:
    await harness.click(button, CR, user="UREQ")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    answer = await harness.submit(
        "change_progress_notes", {"notes": {"notes": {"value": notes}}}, user="UREQ", private_metadata=meta
    )
    assert answer == {}


async def test_the_failed_card_keeps_the_implementer_and_offers_rolled_back(harness: Harness) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_start", CR, user="UREQ")
    await report_with_notes(harness, "change_fail", HOSTILE)
    await harness.settle()
    card = last_card(harness)
    assert (await harness.change(CR)).status is Status.FAILED
    assert "Implementer <@UREQ>" in card and "change_rollback" in card and "change_close" in card
    await report_with_notes(harness, "change_rollback", "Reverted to 2.3")
    await harness.settle()
    assert (await harness.change(CR)).status is Status.ROLLED_BACK
    card = last_card(harness)
    assert "Implementer <@UREQ>" in card and "change_rollback" not in card and "change_close" in card


async def test_the_audit_in_show_gives_each_entry_its_details_escaped(harness: Harness) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_start", CR, user="UREQ")
    await report_with_notes(harness, "change_fail", HOSTILE)
    shown = json.dumps((await harness.command(f"show {CR}", user="UREQ"))["blocks"], ensure_ascii=False)
    assert "auto approved · reason: no approval needed for a normal change of low risk" in shown
    assert (
        "failed · notes: &lt;!channel&gt; *boom* &lt;@UCTO&gt; &amp; &lt;https://evil.example|click&gt;"
        in shown
    )
    assert "<!channel>" not in shown and "<@UCTO>" not in shown and "<https://evil" not in shown


async def test_sent_notices_are_in_the_audit_trail(harness: Harness) -> None:
    await approved(harness)  # starts in two hours: T-1h is the first notice it gets
    change = await harness.change(CR)
    await harness.advance_to(change.draft.starts_at - timedelta(hours=1))
    await harness.settle()
    trail = [(e.action.value, e.details.get("notice")) for e in (await harness.change(CR)).audit]
    assert ("notice_sent", "t_minus_1h") in trail
    shown = json.dumps((await harness.command(f"show {CR}", user="UREQ"))["blocks"], ensure_ascii=False)
    assert "notice sent · notice: t_minus_1h" in shown


async def test_refusals_answer_in_one_line_and_only_an_unknown_word_gets_the_help(harness: Harness) -> None:
    for text in (
        "show CR-2026-9999",
        "show",
        "list everything",
        "cancel",
        "cancel CR-2026-9999",
        "calendar someday",
        "freeze sometime",
        "report fortnight",
        f"incident {CR}",
    ):
        blocks = (await harness.command(text, user="UREQ"))["blocks"]
        assert len(blocks) == 1, (text, blocks)
        assert "changebot: change requests in Slack" not in json.dumps(blocks), text
    await approved(harness)
    refused = (await harness.command(f"cancel {CR} <!channel>", user="USTRANGER"))["blocks"]
    assert len(refused) == 1 and "Not cancelled" in json.dumps(refused)
    unknown = json.dumps((await harness.command("fly", user="UREQ"))["blocks"])
    assert "I don't know `/change fly`" in unknown and "changebot: change requests in Slack" in unknown
    assert "changebot: change requests in Slack" in json.dumps(
        (await harness.command("help", user="U1"))["blocks"]
    )


def test_role_labels_keep_their_acronyms() -> None:
    assert role_label("cto") == "CTO"
    assert role_label("engineering_manager") == "Engineering manager"
    assert role_label("tech-lead") == "Tech lead"
    assert role_label("sre_lead") == "SRE lead"
    assert role_label("vp_engineering") == "VP engineering"
    assert role_label("head_of_qa") == "Head of QA"
    assert role_label("dba") == "DBA"


async def test_cards_name_roles_as_people_say_them(harness: Harness) -> None:
    await approved(harness, impact="critical", likelihood="medium")  # critical risk: the CTO approves
    card = rendered(next(c for c in harness.posts_to("CCHANGES") if c.params.get("blocks")))
    assert "CTO 0/1" in card and "Cto" not in card
