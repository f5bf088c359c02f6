"""The change timeline end to end: notices, implementation buttons, short notice,
rescheduling, cancelling, downtime catch-up, overrun, monitoring and close."""

from __future__ import annotations

import json
from datetime import timedelta

from domain.enums import Status
from tests.support.flows import approved_change
from tests.support.harness import Harness

CR = "CR-2026-0001"


def rendered(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return params["text"] + " " + json.dumps(params.get("blocks") or [])


def thread_posts(harness: Harness, card_ts: str) -> list[str]:
    return [rendered(c) for c in harness.posts_to("CCHANGES") if c.params.get("thread_ts") == card_ts]


def card_ts(harness: Harness) -> str:
    return next(
        m["ts"]
        for m in harness.slack.messages("CCHANGES")
        if m.get("blocks") and m.get("thread_ts") in (None, m["ts"])
    )


async def notice_rows(harness: Harness) -> list[tuple[str, str]]:
    return [(n.key, n.state) for n in await harness.bot.context.gateway._repo.notices(CR)]


async def test_the_whole_timeline_of_a_change(harness: Harness) -> None:
    change = await approved_change(harness)
    start = change.draft.starts_at
    assert [k for k, _ in await notice_rows(harness)] == [
        "t_minus_24h",
        "t_minus_1h",
        "t_minus_15m",
        "t_0",
        "t_plus_15m",
        "t_plus_30m",
        "overrun",
    ]
    ts = card_ts(harness)

    await harness.advance_to(start - timedelta(hours=24, seconds=1))
    assert thread_posts(harness, ts) == []  # nothing early
    await harness.advance_to(start - timedelta(hours=24))
    [heads_up] = thread_posts(harness, ts)
    assert (
        "T-24h" in heads_up
        and "starts in 24 hours" in heads_up
        and f"<!date^{int(start.timestamp())}^" in heads_up
    )
    assert len(harness.posts_to("CSTAKE")) == 1  # stakeholders of normal changes
    assert not harness.posts_to("UIMPL")

    await harness.advance_to(start - timedelta(hours=1))
    assert "Final reminder" in thread_posts(harness, ts)[-1]
    [reminder] = harness.posts_to("UIMPL")
    body = json.dumps(reminder.params["blocks"])
    assert "<@UIMPL>" in body and "approvals complete" in body and "Roll back if: Error rate" in body

    await harness.advance_to(start - timedelta(minutes=15))
    assert "Prepare: take a backup" in json.dumps(harness.posts_to("UIMPL")[-1].params["blocks"])

    await harness.advance_to(start)
    opening = harness.posts_to("UIMPL")[-1]
    ids = [e["action_id"] for b in opening.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["change_start", "change_complete", "change_fail", "change_rollback"]

    await harness.click("change_start", CR, user="UIMPL", channel="D_UIMPL")
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    assert any("started" in t for t in thread_posts(harness, ts))

    await harness.advance_to(start + timedelta(minutes=15))
    update = harness.posts_to("UIMPL")[-1]
    assert "Status update" in update.params["text"] or "Status update" in json.dumps(update.params["blocks"])

    await harness.click("change_complete", CR, user="UIMPL", channel="D_UIMPL")
    done = await harness.change(CR)
    assert done.status is Status.COMPLETED and done.finished_at == start + timedelta(minutes=15)
    assert any("completed" in t for t in thread_posts(harness, ts))
    assert any("completed" in rendered(c) for c in harness.posts_to("CSTAKE"))
    assert any("completed" in rendered(c) for c in harness.posts_to("UREQ"))
    states = dict(await notice_rows(harness))
    assert states["overrun"] == "cancelled" and states["monitoring_end"] == "pending"

    await harness.advance_to(done.finished_at + timedelta(hours=1))  # normal: 1 h monitoring
    closing = harness.posts_to("UIMPL")[-1]
    assert "change_close" in json.dumps(closing.params["blocks"])
    await harness.click("change_close", CR, user="UIMPL", channel="D_UIMPL")
    closed = await harness.change(CR)
    assert closed.status is Status.CLOSED
    assert [e.action.value for e in closed.audit if e.action.value != "notice_sent"] == [
        "submitted",
        "auto_approved",
        "started",
        "completed",
        "closed",
    ]
    # every notice sent is in the trail too
    sent = [e.details["notice"] for e in closed.audit if e.action.value == "notice_sent"]
    assert sorted(sent) == sorted(key for key, state in await notice_rows(harness) if state == "sent")
    assert "t_minus_24h" in sent and "monitoring_end" in sent
    # the card in the channel followed every step
    final_card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"][-1]
    assert "Closed" in json.dumps(final_card.params["blocks"])
    # and every notice went out exactly once
    assert sorted(await notice_rows(harness)) == sorted(
        [
            ("t_minus_24h", "sent"),
            ("t_minus_1h", "sent"),
            ("t_minus_15m", "sent"),
            ("t_0", "sent"),
            ("t_plus_15m", "sent"),
            ("t_plus_30m", "cancelled"),
            ("overrun", "cancelled"),
            ("monitoring_end", "sent"),
        ]
    )


async def test_only_the_implementer_or_requester_may_report_progress(harness: Harness) -> None:
    change = await approved_change(harness)
    await harness.advance_to(change.draft.starts_at)  # inside its window: only who may start matters
    await harness.click("change_start", CR, user="USTRANGER")
    assert (await harness.change(CR)).status is Status.APPROVED
    [refusal] = [c.params["text"] for c in harness.slack.calls_to("chat.postEphemeral")]
    assert "only the implementer <@UIMPL> or the requester" in refusal
    assert (await harness.change(CR)).audit[-1].action.value == "action_refused"
    await harness.click("change_start", CR, user="UREQ")
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    await harness.click("change_start", CR, user="UIMPL")
    assert "cannot start" in harness.slack.calls_to("chat.postEphemeral")[-1].params["text"]


async def test_completing_without_start_records_both(harness: Harness) -> None:
    change = await approved_change(harness, implementer=None)
    await harness.advance_to(change.draft.starts_at)
    await harness.click("change_complete", CR, user="UREQ")
    change = await harness.change(CR)
    assert change.status is Status.COMPLETED and change.started_at == change.finished_at
    assert [e.action.value for e in change.audit][-2:] == ["started", "completed"]


async def test_failure_asks_for_notes_and_alerts_the_channel(harness: Harness) -> None:
    change = await approved_change(harness)
    await harness.advance_to(change.draft.starts_at)
    await harness.click("change_start", CR, user="UIMPL")
    await harness.click("change_fail", CR, user="UIMPL")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == "change_progress_notes"
    empty = await harness.submit(
        "change_progress_notes",
        {"notes": {"notes": {"value": " "}}},
        user="UIMPL",
        private_metadata=view["private_metadata"],
    )
    assert "notes" in empty["errors"]
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    answer = await harness.submit(
        "change_progress_notes",
        {"notes": {"notes": {"value": "DB migration locked <!here>"}}},
        user="UIMPL",
        private_metadata=view["private_metadata"],
    )
    assert answer == {}
    failed = await harness.change(CR)
    assert failed.status is Status.FAILED and failed.outcome_notes == "DB migration locked <!here>"
    top_level = [rendered(c) for c in harness.posts_to("CCHANGES") if not c.params.get("thread_ts")]
    assert any("failed" in t and "&lt;!here&gt;" in t and "<!here>" not in t for t in top_level)
    # the timeline stops; only the review chase (a failed change is reviewed) stays pending
    assert {key for key, state in await notice_rows(harness) if state == "pending"} == {
        "review_reminder",
        "review_deadline",
    }
    await harness.click("change_rollback", CR, user="UIMPL")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    await harness.submit(
        "change_progress_notes",
        {"notes": {"notes": {"value": "Restored 2.3"}}},
        user="UIMPL",
        private_metadata=meta,
    )
    assert (await harness.change(CR)).status is Status.ROLLED_BACK


async def test_short_notice_instead_of_a_stale_heads_up(harness: Harness) -> None:
    await approved_change(harness, starts_in=timedelta(hours=3))
    keys = [k for k, _ in await notice_rows(harness)]
    assert "t_minus_24h" not in keys and keys[0] == "short_notice"
    await harness.tick()
    ts = card_ts(harness)
    assert any("Short notice" in t for t in thread_posts(harness, ts))


async def test_approval_by_quorum_plans_the_timeline_then(harness: Harness) -> None:
    await harness.file_change()  # medium risk: waits for a tech lead
    assert [k for k, _ in await notice_rows(harness) if not k.startswith("approval_")] == []  # only chased
    harness.clock.advance(timedelta(days=1, hours=12))  # approved 12 h before the start
    await harness.click("change_approve", CR, user="ULEAD1")
    keys = [k for k, state in await notice_rows(harness) if state == "pending"]
    assert keys[0] == "short_notice" and "t_minus_24h" not in keys and "t_0" in keys


async def test_rejected_and_cancelled_changes_get_no_notices(harness: Harness) -> None:
    await approved_change(harness)
    answer = await harness.command(f"cancel {CR} window clash", user="UREQ")
    assert "cancelled" in json.dumps(answer["blocks"])
    change = await harness.change(CR)
    assert change.status is Status.CANCELLED
    assert {state for _, state in await notice_rows(harness)} == {"cancelled"}
    before = len(harness.slack.calls_to("chat.postMessage"))
    await harness.advance_to(change.draft.ends_at + timedelta(hours=1))
    assert len(harness.slack.calls_to("chat.postMessage")) == before
    again = await harness.command(f"cancel {CR}", user="UREQ")
    assert "Not cancelled" in json.dumps(again["blocks"])
    other = await harness.command("cancel CR-2026-0001", user="USTRANGER")
    assert "Not cancelled" in json.dumps(other["blocks"])


async def test_reschedule_recomputes_pending_notices(harness: Harness) -> None:
    change = await approved_change(harness)
    await harness.command(f"reschedule {CR}", user="UREQ")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == "change_reschedule"
    new_start = int((change.draft.starts_at + timedelta(days=3)).timestamp())
    bad = await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": new_start}},
            "ends_at": {"ends_at": {"selected_date_time": new_start - 60}},
        },
        user="UREQ",
        private_metadata=view["private_metadata"],
    )
    assert "ends_at" in bad["errors"]
    refused = await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": new_start}},
            "ends_at": {"ends_at": {"selected_date_time": new_start + 600}},
        },
        user="USTRANGER",
        private_metadata=view["private_metadata"],
    )
    assert "only the requester" in refused["errors"]["starts_at"]
    ok = await harness.submit(
        "change_reschedule",
        {
            "starts_at": {"starts_at": {"selected_date_time": new_start}},
            "ends_at": {"ends_at": {"selected_date_time": new_start + 600}},
        },
        user="UREQ",
        private_metadata=view["private_metadata"],
    )
    assert ok == {}
    moved = await harness.change(CR)
    assert int(moved.draft.starts_at.timestamp()) == new_start
    rows = await harness.bot.context.gateway._repo.notices(CR)
    pending = {n.key: n.due_at for n in rows if n.state == "pending"}
    assert pending["t_0"] == moved.draft.starts_at
    assert pending["t_minus_24h"] == moved.draft.starts_at - timedelta(hours=24)
    assert len([n for n in rows if n.state == "cancelled"]) == 7
    assert moved.audit[-1].action.value == "rescheduled"
    assert any("moved" in t for t in thread_posts(harness, card_ts(harness)))
    # the old T-24h never fires
    await harness.advance_to(change.draft.starts_at - timedelta(hours=24))
    assert not any("T-24h" in t for t in thread_posts(harness, card_ts(harness)))


async def test_after_downtime_stale_notices_are_skipped_and_audited_the_rest_sent_late(
    harness: Harness,
) -> None:
    change = await approved_change(harness)
    start = change.draft.starts_at
    harness.clock.set(start + timedelta(minutes=10))  # the bot was down from before T-24h until T+10m
    await harness.tick()
    states = dict(await notice_rows(harness))
    assert states["t_minus_24h"] == "skipped" and states["t_minus_1h"] == "skipped"
    assert states["t_0"] == "sent" and states["t_plus_15m"] == "pending"
    audit = (await harness.change(CR)).audit
    skipped = [e for e in audit if e.action.value == "notice_skipped"]
    assert {e.details["notice"] for e in skipped} == {"t_minus_24h", "t_minus_1h", "t_minus_15m"}
    assert "moment passed" in skipped[0].details["reason"]
    late = [e for e in audit if e.action.value == "notice_sent_late"]
    assert [e.details["notice"] for e in late] == ["t_0"]
    opening = harness.posts_to("UIMPL")[-1]
    assert "Sent late" in json.dumps(opening.params["blocks"])


async def test_overrun_alerts_implementer_and_channel(harness: Harness) -> None:
    change = await approved_change(harness)
    await harness.advance_to(change.draft.starts_at)
    await harness.click("change_start", CR, user="UIMPL")
    await harness.advance_to(change.draft.ends_at)
    top_level = [
        c
        for c in harness.posts_to("CCHANGES")
        if not c.params.get("thread_ts") and c.params["text"].startswith("Overrun")
    ]
    assert any("Overrun" in json.dumps(c.params.get("blocks")) for c in top_level)
    assert "Overrun" in json.dumps(harness.posts_to("UIMPL")[-1].params["blocks"])


async def test_notices_survive_a_restart_and_go_out_once(harness: Harness) -> None:
    change = await approved_change(harness)
    service = harness.bot.context.service
    harness.clock.set(change.draft.starts_at - timedelta(hours=1))
    repo = harness.bot.context.gateway._repo
    claimed = await repo.claim_due_notices(now=harness.clock.now(), limit=10, lease=timedelta(seconds=60))
    assert {n.key for n in claimed} == {"t_minus_24h", "t_minus_1h"}  # a replica took them, then died
    assert await service.process_due_notices() == 0  # leased: nobody else takes them
    harness.clock.advance(timedelta(seconds=61))
    await harness.tick()
    ts = card_ts(harness)
    posts = thread_posts(harness, ts)
    heads_up = [p for p in posts if "T-24h" in p]
    assert len(heads_up) == 1 and "Sent late" in heads_up[0]  # still before the start: worth sending
    assert len([p for p in posts if "Final reminder" in p]) == 1
    await harness.tick()
    assert len([p for p in thread_posts(harness, ts) if "Final reminder" in p]) == 1
    assert len([p for p in thread_posts(harness, ts) if "T-24h" in p]) == 1
