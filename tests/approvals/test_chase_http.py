"""Approvals chased and people named, over the real HTTP door and a fake clock: reminders
and escalation exactly once, the deadline on the card and in the digest, who can still
approve, an approver's own DM copy showing their decision."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import Changebot, build_changebot
from bot.settings import Settings
from domain.enums import Status
from domain.policy_loader import parse_policy
from tests.support.flows import digests
from tests.support.harness import START, Db, Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import SIGNING_SECRET

CR = "CR-2026-0001"
DUE = START + timedelta(hours=8)  # a medium change filed at START is due by then (policy default)


def texts_to(harness: Harness, user: str, needle: str) -> list[str]:
    return [c.params["text"] for c in harness.posts_to(user) if needle in c.params["text"]]


def blocks(call: Any) -> str:
    return json.dumps(call.params["blocks"], ensure_ascii=False)


def latest_card(harness: Harness, channel: str) -> str:
    """The card as it reads now in `channel` (the last update, else the post)."""
    updates = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == channel]
    if updates:
        return blocks(updates[-1])
    return blocks(next(c for c in harness.posts_to(channel) if c.params.get("blocks")))


async def test_the_approvers_are_reminded_then_the_overdue_change_escalated_once(harness: Harness) -> None:
    await harness.file_change()  # medium risk: one tech lead, due by 15:00
    assert "Approval due by" in latest_card(harness, "CCHANGES")

    await harness.advance_to(START + timedelta(hours=4))
    await harness.tick()
    for lead in ("ULEAD1", "ULEAD2"):
        assert len(texts_to(harness, lead, "Reminder: *CR-2026-0001*")) == 1
    assert texts_to(harness, "UREQ", "Reminder") == []  # the requester is not an approver

    await harness.advance_to(DUE)
    await harness.tick()
    for lead in ("ULEAD1", "ULEAD2"):
        assert len(texts_to(harness, lead, "is overdue for approval")) == 1
    for manager in ("UMGR1", "UMGR2"):  # the escalation role, a user group
        [told] = texts_to(harness, manager, "is overdue for approval")
        assert "; you are told as " in told
    card = latest_card(harness, "CCHANGES")
    assert "Approval *overdue*" in card and "; escalated to " in card
    trail = [e.action.value for e in (await harness.change(CR)).audit]
    # each chase notice is audited as sent (as every notice is), then what it did
    assert trail == ["submitted", "notice_sent", "approval_reminded", "notice_sent", "approval_overdue"]


async def test_an_approved_change_is_not_chased(harness: Harness) -> None:
    await harness.file_change()
    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    await harness.advance_to(DUE + timedelta(days=3))

    assert texts_to(harness, "ULEAD2", "Reminder") == []
    assert texts_to(harness, "UMGR1", "overdue") == []
    assert texts_to(harness, "UREQ", "not approved yet") == []
    assert "Approval due" not in latest_card(harness, "CCHANGES")


async def test_the_requester_is_told_once_when_the_window_opens_unapproved(harness: Harness) -> None:
    await harness.file_change()
    change = await harness.change(CR)
    await harness.advance_to(change.draft.starts_at)
    await harness.tick()

    [told] = texts_to(harness, "UREQ", "not approved yet")
    assert "Do not start it" in told
    assert "unapproved_at_start" in [e.action.value for e in (await harness.change(CR)).audit]


@pytest.fixture
async def restarted(harness: Harness) -> AsyncIterator[Changebot]:
    """The bot started again on the same database and Slack (the first one kept running
    stands for a replica, or a process that died holding a claim)."""
    settings = Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=harness.slack.base_url,
        database_url=harness.bot.settings.database_url,
    )
    bot = build_changebot(settings, parse_policy(TEST_POLICY), clock=harness.clock)
    await bot.start(run_scheduler=False)
    await bot.context.dispatcher.drain()
    yield bot
    await bot.stop()


async def test_a_reminder_claimed_by_a_process_that_died_is_sent_once_after_restart(
    harness: Harness, restarted: Changebot, db: Db
) -> None:
    await harness.file_change()
    harness.clock.set(START + timedelta(hours=4))
    # A process claims the due reminder, then dies before settling it.
    claimed = await db.repo.claim_due_notices(now=harness.clock.now(), limit=10, lease=timedelta(seconds=15))
    assert [n.key for n in claimed] == ["approval_reminder"]

    assert await restarted.context.service.process_due_notices() == 0  # still held by the dead claim
    harness.clock.advance(timedelta(seconds=16))
    assert await restarted.context.service.process_due_notices() == 1
    assert await harness.bot.context.service.process_due_notices() == 0
    await harness.settle()

    for lead in ("ULEAD1", "ULEAD2"):
        assert len(texts_to(harness, lead, "Reminder: *CR-2026-0001*")) == 1


async def test_the_digest_says_by_when_a_waiting_change_is_due(harness: Harness) -> None:
    await harness.file_change()
    harness.clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    assert await harness.bot.context.service.run_digest()
    await harness.settle()
    [digest] = digests(harness)
    assert "approval due by" in digest


async def test_cards_name_who_can_still_approve_each_open_step(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")  # 2 tech leads + 1 manager
    card = latest_card(harness, "CCHANGES")
    assert " 0/2 · can approve: <@ULEAD1>, <@ULEAD2>" in card
    assert " 0/1 · can approve: <@UMGR1>, <@UMGR2>" in card

    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")
    card = latest_card(harness, "CCHANGES")
    assert " 1/2: <@ULEAD1> · can approve: <@ULEAD2>" in card

    await harness.click("change_approve", CR, user="UMGR2", channel="D_UMGR2")
    card = latest_card(harness, "CCHANGES")
    assert " 1/1: <@UMGR2>\\n" in card  # a full step names no one else


async def test_an_approvers_dm_copy_shows_their_decision_instead_of_the_buttons(harness: Harness) -> None:
    await harness.file_change(impact="high", likelihood="medium")
    await harness.click("change_approve", CR, user="ULEAD1", channel="D_ULEAD1")

    mine = latest_card(harness, "D_ULEAD1")
    assert "You approved this change" in mine and "change_approve" not in mine
    other = latest_card(harness, "D_ULEAD2")
    assert "change_approve" in other and "You approved" not in other
    assert "change_approve" in latest_card(harness, "CCHANGES")  # the channel copy keeps the buttons
    assert (await harness.change(CR)).status is Status.PENDING_APPROVAL
