"""Notices people read, through the HTTP door on the fake clock: the documents' full
timeline once per offset, the stakeholders' notice in document 001's template, DMs held
over the reader's quiet hours, and a freeze with an end that tells the owners and ends
itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domain.enums import Status
from tests.support.flows import approved_change
from tests.support.harness import Harness

CR = "CR-2026-0001"
HOSTILE = "<!channel> *bold* <@UCTO> & <https://evil.example|click>"


def rendered(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return params["text"] + " " + json.dumps(params.get("blocks") or [])


def threaded(harness: Harness) -> list[str]:
    return [rendered(c) for c in harness.posts_to("CCHANGES") if c.params.get("thread_ts")]


async def test_the_full_timeline_posts_at_each_offset_once(harness: Harness) -> None:
    change = await approved_change(
        harness, title="Gateway " + HOSTILE, rollback_plan="Redeploy 2.3 " + HOSTILE
    )
    start = change.draft.starts_at  # type: ignore[attr-defined]
    offsets = {
        "T-24h": -timedelta(hours=24),
        "T-1h": -timedelta(hours=1),
        "T-15m": -timedelta(minutes=15),
        "T-0": timedelta(0),
        "T+15m": timedelta(minutes=15),
        "T+30m": timedelta(minutes=30),
    }
    seen: dict[str, int] = {}
    for label, offset in offsets.items():
        await harness.advance_to(start + offset - timedelta(seconds=1))
        before = len(harness.posts_to("UIMPL")) + len(threaded(harness))
        await harness.advance_to(start + offset)
        if label == "T-0":
            await harness.click("change_start", CR, user="UIMPL", channel="D_UIMPL")
        await harness.tick()  # a second tick sends nothing twice
        posts = [rendered(c) for c in harness.posts_to("UIMPL")] + threaded(harness)
        seen[label] = sum(1 for text in posts if text.startswith(f"{label}: "))
        assert len(harness.posts_to("UIMPL")) + len(threaded(harness)) > before, label
    # thread + DM where the audience has both; the preparation and verification are DMs only
    assert seen == {"T-24h": 1, "T-1h": 2, "T-15m": 1, "T-0": 2, "T+15m": 2, "T+30m": 1}
    dms = [rendered(c) for c in harness.posts_to("UIMPL")]
    assert any("Prepare: take a backup" in t for t in dms) and "Verify: run the smoke tests" in dms[-1]


async def test_stakeholders_read_the_001_template_escaped(harness: Harness) -> None:
    change = await approved_change(
        harness,
        title="Gateway " + HOSTILE,
        description="Roll out 2.4 " + HOSTILE,
        rollback_plan="Redeploy 2.3 " + HOSTILE,
        downtime="5",
    )
    await harness.advance_to(change.draft.starts_at - timedelta(hours=24))  # type: ignore[attr-defined]
    [notice] = harness.posts_to("CSTAKE")
    text = rendered(notice)
    for part in (
        "[SCHEDULED MAINTENANCE]",
        "Maintenance window:",
        "Services affected:* api-server",
        "Expected impact:* low impact, up to 5 min of downtime",
        "What we're doing:* Roll out 2.4",
        "Contact:* implementer <@UIMPL>",
        "Rollback plan:* Redeploy 2.3",
    ):
        assert part in text, part
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<@UCTO>" not in text and "<https://evil" not in text


async def test_a_freeze_until_a_day_tells_the_owners_refuses_and_ends_itself(harness: Harness) -> None:
    change = await approved_change(harness)  # Wed 25 Nov, 07:00 UTC
    assert "Use `/change freeze start [2026-12-24]" in json.dumps(
        (await harness.command("freeze start 2026-02-30 typo", user="UCTO"))["blocks"]
    )
    assert "in the past" in json.dumps(
        (await harness.command("freeze start 2026-11-22 x", user="UCTO"))["blocks"]
    )
    assert harness.posts_to("UIMPL") == []

    started = json.dumps((await harness.command("freeze start 2026-11-26 " + HOSTILE, user="UCTO"))["blocks"])
    assert "freeze is on until <!date^" in started
    [announced] = [c for c in harness.posts_to("CCHANGES") if "declared a change freeze" in rendered(c)]
    assert "until <!date^" in rendered(announced) and "<!channel>" not in rendered(announced)
    for owner in ("UIMPL", "UREQ"):
        told = [rendered(c) for c in harness.posts_to(owner) if "falls inside it" in rendered(c)]
        assert len(told) == 1 and CR in told[0] and "&lt;!channel&gt;" in told[0], owner

    await harness.advance_to(change.draft.starts_at)  # type: ignore[attr-defined]
    await harness.click("change_start", CR, user="UIMPL", channel="D_UIMPL")
    refusal = harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]
    assert "a change freeze is on" in refusal and "until Thu 26 Nov 00:00 GMT): ‹!channel›" in refusal
    assert "<!channel>" not in refusal and "<@UCTO>" not in refusal
    calendar = json.dumps((await harness.command("calendar week", user="UREQ"))["blocks"])
    assert "until lifted" not in calendar and ", until <!date^" in calendar

    await harness.advance_to(datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    await harness.tick()
    ended = [c for c in harness.posts_to("CCHANGES") if "ended as planned" in rendered(c)]
    assert len(ended) == 1
    again = json.dumps((await harness.command("freeze start next one", user="UCTO"))["blocks"])
    assert "freeze is on until lifted" in again
    assert (await harness.change(CR)).status is Status.APPROVED
