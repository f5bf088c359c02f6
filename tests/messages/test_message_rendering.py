"""Every message renders, through modals/, to a mrkdwn text and Block Kit that slack_sdk's
models accept, with what users typed escaped, whatever the message."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.listing import Counted
from domain.messages import (
    ApprovalChase,
    BoardNews,
    CabAgendaPost,
    CalendarDigest,
    ChangeNews,
    ChangesRequested,
    Decided,
    DelegationNews,
    Edited,
    Filed,
    FreezeChanged,
    FreezeCovers,
    IncidentLinked,
    OnCallFound,
    PostChase,
    PostDecided,
    ProgressUpdate,
    ReportPost,
    Rescheduled,
    ReviewChase,
    ReviewDone,
    ReviewRequest,
    ReviewRequired,
    StakeholderNotice,
    TimelineNotice,
)
from domain.metrics import compute_metrics, weekly_series
from domain.model import Change, ChangeDraft, PostState, Review, StepSnapshot
from domain.policy_loader import parse_policy
from domain.read_models import CabAgenda, CalendarView, Report
from domain.timeline import OVERRUN, REVIEW_DEADLINE, SHORT_NOTICE
from modals.messages import SendTime, render_message
from tests.support.policy_fixture import TEST_POLICY

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
HOSTILE = "<!channel> <@U123> <https://evil.example|ZZFORGED> & *b*"
RAW = ("<!channel", "<@U123", "<https://evil", "ZZFORGED>")
POLICY = parse_policy(TEST_POLICY)


def change(**overrides: Any) -> Change:
    draft = ChangeDraft(
        title=f"Upgrade {HOSTILE}",
        category=Category.EMERGENCY,
        impact=Impact.HIGH,
        likelihood=Likelihood.MEDIUM,
        services=("api-server",),
        starts_at=NOW + timedelta(hours=2),
        ends_at=NOW + timedelta(hours=3),
        description=HOSTILE,
        implementer="UDEV",
    )
    fields: dict[str, Any] = {
        "id": "CR-2026-0001",
        "draft": draft,
        "risk": Risk.HIGH,
        "status": Status.PENDING_APPROVAL,
        "requester": "UREQ",
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "steps": (StepSnapshot("tech_lead", 1, ("ULEAD1", "ULEAD2")),),
        "post_state": PostState.PENDING,
        "post_due_at": NOW + timedelta(days=1),
        "post_steps": (StepSnapshot("cto", 1, ("UCTO",)),),
        "review": Review(NOW, NOW + timedelta(days=5), HOSTILE),
    }
    return Change(**(fields | overrides))


CHANGE_NEWS: list[ChangeNews] = [
    Filed(status=Status.PENDING_APPROVAL),
    Decided(by="ULEAD1", decision=Decision.REJECT, status=Status.REJECTED, role="tech_lead", reason=HOSTILE),
    ProgressUpdate(status=Status.FAILED, by="UDEV", notes=HOSTILE, thread=True),
    Rescheduled(by="UREQ", reapproval=True, moved_from=(NOW, NOW + timedelta(hours=1))),
    ReviewRequest(),
    ReviewChase(key=REVIEW_DEADLINE, role="cto"),
    ReviewChase(key="review_reminder"),
    ReviewDone(by="UDEV", thread=True),
    IncidentLinked(by="ULEAD1", incident=HOSTILE, thread=True),
    OnCallFound(users=("UONE",), source="fallback", reason=HOSTILE, thread=True),
    OnCallFound(users=(), source="pagerduty"),
    PostChase(key="post_deadline", late=True, due_at=NOW, role="cto"),
    PostChase(key="post_reminder", due_at=NOW),
    PostDecided(by="UCTO", decision=Decision.APPROVE, state=PostState.APPROVED, reason=HOSTILE),
    ReviewRequired(),
    TimelineNotice(key="t_minus_1h", due_at=NOW, actions=True),
    TimelineNotice(key=OVERRUN, late=True, due_at=NOW, actions=True),
    TimelineNotice(key=SHORT_NOTICE, due_at=NOW, thread=True),
    Edited(by="UREQ", changes=(f"Title: Upgrade → {HOSTILE}", "Rollback plan changed"), reapproval=True),
    Edited(by="UREQ", resubmitted=True, thread=True),
    ChangesRequested(by="ULEAD1", role="tech_lead", comment=HOSTILE),
    ChangesRequested(by="ULEAD1", role="tech_lead", comment=HOSTILE, thread=True),
    StakeholderNotice(key="t_minus_24h", due_at=NOW, late=True),
    StakeholderNotice(key="t_0", due_at=NOW),
    FreezeCovers(by="UCTO", reason=HOSTILE, until=NOW),
    FreezeCovers(by="UCTO"),
    ApprovalChase(key="approval_reminder", due_at=NOW),
    ApprovalChase(key="approval_deadline", due_at=NOW, late=True),
    ApprovalChase(key="approval_deadline", due_at=NOW, role="cto"),
    ApprovalChase(key="approval_at_start", due_at=NOW),
]


def board(message: BoardNews) -> SendTime:
    listed = Counted.of([change(status=Status.APPROVED)])
    if isinstance(message, CalendarDigest):
        view = CalendarView(message.span, NOW, listed, listed, Counted.of([]), listed, listed)
        return SendTime(POLICY, calendar=view)
    if isinstance(message, CabAgendaPost):
        return SendTime(POLICY, agenda=CabAgenda(NOW, listed, listed, listed, listed, ("CR-2026-0001",)))
    if isinstance(message, ReportPost):
        changes = [change(status=Status.FAILED, created_at=NOW - timedelta(days=3))]
        span = message.span
        metrics = compute_metrics(changes=changes, start=span.start, end=span.end, targets=POLICY.targets)
        series = weekly_series(changes=changes, start=span.start, end=span.end)
        return SendTime(POLICY, report=Report(span.title, metrics, series))
    return SendTime(POLICY)


BOARD_NEWS: list[BoardNews] = [
    CalendarDigest(start=NOW, end=NOW + timedelta(days=2), title="Change calendar for Mon 23 Nov"),
    FreezeChanged(started=True, by="UCTO", reason=HOSTILE),
    FreezeChanged(started=False, by="UCTO"),
    FreezeChanged(started=True, by="UCTO", reason=HOSTILE, until=NOW),
    FreezeChanged(started=False, by="changebot", reason=HOSTILE, as_planned=True),
    CabAgendaPost(),
    ReportPost(start=NOW - timedelta(days=30), end=NOW, title="Changes in November"),
    DelegationNews(delegator="UCTO", until=NOW + timedelta(days=3)),
    DelegationNews(delegator="UCTO", until=NOW, ended=True),
]
CASES = [(message, SendTime(POLICY, change=change())) for message in CHANGE_NEWS] + [
    (message, board(message)) for message in BOARD_NEWS
]
# sent back to a normal change's requester: the message carries the Edit button
SENT_BACK = change(status=Status.CHANGES_REQUESTED, post_state=None, post_steps=())
SENT_BACK = replace(SENT_BACK, draft=replace(SENT_BACK.draft, category=Category.NORMAL))
CASES.append(
    (ChangesRequested(by="ULEAD1", role="tech_lead", comment=HOSTILE), SendTime(POLICY, change=SENT_BACK))
)


def assert_valid(text: str, blocks: list[dict[str, Any]] | None) -> None:
    assert text.strip()
    for raw in blocks or []:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # slack_sdk's own limits and required fields
        assert block.to_dict()["type"] == raw["type"]
    assert len(blocks or []) <= 50
    shown = text + json.dumps(blocks or [])
    assert not [raw for raw in RAW if raw in shown], shown


@pytest.mark.parametrize(
    ("message", "at"), [pytest.param(*case, id=type(case[0]).__name__) for case in CASES]
)
def test_every_message_renders_valid_block_kit_with_user_text_escaped(
    message: ChangeNews | BoardNews, at: SendTime
) -> None:
    text, blocks = render_message(message, at)
    assert_valid(text, blocks)


def test_user_text_shows_escaped_not_dropped() -> None:
    text, _ = render_message(IncidentLinked(by="ULEAD1", incident=HOSTILE), SendTime(POLICY, change=change()))
    assert "&lt;!channel&gt;" in text and "<@ULEAD1>" in text
    text, _ = render_message(
        ProgressUpdate(status=Status.FAILED, by="UDEV", notes="Disk full"), SendTime(POLICY, change=change())
    )
    assert text.startswith("<@UDEV> :x: failed *CR-2026-0001*") and text.endswith("> Disk full")


def test_a_message_about_a_change_needs_the_change() -> None:
    with pytest.raises(ValueError, match="without its change"):
        render_message(ReviewDone(by="UDEV"), SendTime(POLICY))


def test_a_sent_back_change_offers_its_requester_the_edit_button() -> None:
    text, blocks = render_message(
        ChangesRequested(by="ULEAD1", role="tech_lead", comment=HOSTILE), SendTime(POLICY, change=SENT_BACK)
    )
    assert "asks for changes to *CR-2026-0001*" in text and "&lt;!channel&gt;" in text
    assert '"action_id": "change_edit"' in json.dumps(blocks)


def test_the_stakeholders_read_document_001s_template() -> None:
    text, blocks = render_message(
        StakeholderNotice(key="t_minus_24h", due_at=NOW), SendTime(POLICY, change=change())
    )
    shown = json.dumps(blocks)
    assert text.startswith("[SCHEDULED MAINTENANCE] CR-2026-0001")
    for heading in (
        "Maintenance window",
        "Services affected",
        "Expected impact",
        "What we",
        "Contact",
        "Rollback plan",
    ):
        assert f"*{heading}" in shown, heading
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
