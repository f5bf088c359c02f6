"""Messages are typed values stored in the outbox row's JSON payload, in the shape the
rows always had: rows stored by the previous version parse, and what this version stores
reads the same to the previous one (same "template" values, same keys, same values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.enums import Decision, Status
from domain.intents import IntentKind
from domain.messages import (
    CabAgendaPost,
    CalendarDigest,
    ChangeEvent,
    Decided,
    Ephemeral,
    Filed,
    FreezeChanged,
    FreezeCovers,
    IncidentLinked,
    Message,
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
    Text,
    TimelineNotice,
    message_payload,
)
from domain.model import PostState
from storage.models import OutboxRow
from storage.outbox import row_message

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LATER = AT + timedelta(hours=1)
MESSAGE, DM_ROLE, DM_POSTS = IntentKind.MESSAGE, IntentKind.DM_ROLE, IntentKind.DM_POST_APPROVERS

# (kind of row, the message, the payload the previous version stored for it)
STORED_BEFORE: list[tuple[IntentKind, Message, dict[str, Any]]] = [
    (MESSAGE, Filed(status=Status.PENDING_APPROVAL), {"template": "filed", "status": "pending_approval"}),
    (
        MESSAGE,
        Decided(by="ULEAD1", decision=Decision.APPROVE, status=Status.APPROVED, role="tech_lead", reason=""),
        {
            "template": "decided",
            "by": "ULEAD1",
            "decision": "approve",
            "status": "approved",
            "role": "tech_lead",
            "reason": "",
        },
    ),
    (
        MESSAGE,
        ProgressUpdate(status=Status.FAILED, by="UREQ", notes="Timeouts", thread=True),
        {"template": "progress", "status": "failed", "by": "UREQ", "notes": "Timeouts", "thread": True},
    ),
    (
        IntentKind.DM_APPROVERS,
        Rescheduled(by="UREQ", reapproval=True, moved_from=(AT, LATER)),
        {
            "template": "rescheduled",
            "by": "UREQ",
            "thread": False,
            "reapproval": True,
            "from": [AT.isoformat(), LATER.isoformat()],
        },
    ),
    (
        IntentKind.PD_CHANGE_EVENT,
        ChangeEvent(status=Status.IN_PROGRESS, at=AT, by="UDEV", notes=""),
        {"status": "in_progress", "at": AT.isoformat(), "by": "UDEV", "notes": ""},
    ),
    (MESSAGE, ReviewRequest(), {"template": "review_request"}),
    (MESSAGE, ReviewChase(key="review_reminder"), {"template": "review_chase", "key": "review_reminder"}),
    (
        DM_ROLE,
        ReviewChase(key="review_deadline", role="cto"),
        {"template": "review_chase", "key": "review_deadline", "role": "cto"},
    ),
    (
        MESSAGE,
        ReviewDone(by="UDEV", thread=True),
        {"template": "review_done", "by": "UDEV", "thread": True},
    ),
    (
        MESSAGE,
        IncidentLinked(by="USRE", incident="INC-42", thread=True),
        {"template": "incident_linked", "by": "USRE", "incident": "INC-42", "thread": True},
    ),
    (
        MESSAGE,
        OnCallFound(users=("UONE", "UTWO"), source="fallback", reason="PagerDuty timed out", thread=True),
        {
            "template": "on_call",
            "users": ["UONE", "UTWO"],
            "source": "fallback",
            "reason": "PagerDuty timed out",
            "thread": True,
        },
    ),
    (
        DM_POSTS,
        PostChase(key="post_reminder", late=False, due_at=AT),
        {"template": "post_chase", "key": "post_reminder", "late": False, "due_at": AT.isoformat()},
    ),
    (
        DM_ROLE,
        PostChase(key="post_deadline", late=True, due_at=AT, role="cto"),
        {
            "template": "post_chase",
            "key": "post_deadline",
            "late": True,
            "due_at": AT.isoformat(),
            "role": "cto",
        },
    ),
    (
        MESSAGE,
        PostDecided(by="UCTO", decision=Decision.REJECT, state=PostState.REJECTED, reason="No", thread=True),
        {
            "template": "post_decided",
            "by": "UCTO",
            "decision": "reject",
            "state": "rejected",
            "reason": "No",
            "thread": True,
        },
    ),
    (MESSAGE, ReviewRequired(), {"template": "review_requested"}),
    (
        MESSAGE,
        TimelineNotice(key="t_minus_1h", due_at=AT, actions=True),
        {"template": "notice", "key": "t_minus_1h", "late": False, "due_at": AT.isoformat(), "actions": True},
    ),
    (
        MESSAGE,
        CalendarDigest(start=AT, end=LATER, title="Change calendar for Mon 23 Nov"),
        {
            "template": "digest",
            "start": AT.isoformat(),
            "end": LATER.isoformat(),
            "title": "Change calendar for Mon 23 Nov",
        },
    ),
    (
        MESSAGE,
        FreezeChanged(started=True, by="UCTO", reason="Quarter end"),
        {"template": "freeze", "started": True, "by": "UCTO", "reason": "Quarter end"},
    ),
    (
        MESSAGE,
        StakeholderNotice(key="t_minus_24h", due_at=AT),
        {"template": "stakeholder_notice", "key": "t_minus_24h", "late": False, "due_at": AT.isoformat()},
    ),
    (
        MESSAGE,
        FreezeCovers(by="UCTO", reason="Holidays", until=AT),
        {"template": "freeze_covers", "by": "UCTO", "reason": "Holidays", "until": AT.isoformat()},
    ),
    (MESSAGE, CabAgendaPost(), {"template": "cab_agenda"}),
    (
        IntentKind.REPORT,
        ReportPost(start=AT, end=LATER, title="Changes in October"),
        {
            "template": "report",
            "start": AT.isoformat(),
            "end": LATER.isoformat(),
            "title": "Changes in October",
        },
    ),
    (MESSAGE, Text(text="hello", thread_ts="1.000100"), {"text": "hello", "thread_ts": "1.000100"}),
    (IntentKind.EPHEMERAL, Ephemeral(user="UREQ", text="only you"), {"user": "UREQ", "text": "only you"}),
]
CASES = [pytest.param(*case, id=f"{case[0].value}:{type(case[1]).__name__}") for case in STORED_BEFORE]


def row(kind: IntentKind, payload: dict[str, Any]) -> OutboxRow:
    return OutboxRow(kind=kind.value, change_id="CR-2026-0001", channel="CCHANGES", payload=payload)


@pytest.mark.parametrize(("kind", "message", "before"), CASES)
def test_a_row_the_previous_version_stored_parses_to_its_message(
    kind: IntentKind, message: Message, before: dict[str, Any]
) -> None:
    assert row_message(row(kind, before)) == message


@pytest.mark.parametrize(("kind", "message", "before"), CASES)
def test_a_stored_message_reads_as_the_previous_version_stored_it(
    kind: IntentKind, message: Message, before: dict[str, Any]
) -> None:
    stored = message_payload(message)
    # Every key the previous version wrote, with the same value (it reads nothing else).
    assert {key: stored.get(key) for key in before} == before
    assert row_message(row(kind, stored)) == message


def test_the_type_is_stored_under_template_for_every_message() -> None:
    templates = [message_payload(message)["template"] for _, message, _ in STORED_BEFORE]
    assert len(set(templates)) == len({type(message) for _, message, _ in STORED_BEFORE})


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (IntentKind.POST_CARD, {}),
        (IntentKind.DM_CARD, {"on_call": True}),  # a flag no one read
        (IntentKind.DM_APPROVERS, {}),
        (IntentKind.REFRESH_CARDS, {}),
        (IntentKind.ON_CALL, {}),
        (IntentKind.HOME, {}),
    ],
)
def test_rows_that_say_nothing_hold_no_message(kind: IntentKind, payload: dict[str, Any]) -> None:
    assert row_message(row(kind, payload)) is None
    assert message_payload(None) == {}


@pytest.mark.parametrize(
    "payload",
    [
        {"template": "no_such_message"},
        {"template": "decided", "by": "ULEAD1"},  # fields missing
        {"template": "progress", "status": "sideways", "by": "UDEV"},  # no such status
    ],
)
def test_a_payload_of_no_known_shape_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        row_message(row(IntentKind.MESSAGE, payload))


def test_messages_are_frozen_values() -> None:
    message = ProgressUpdate(status=Status.COMPLETED, by="UDEV")
    with pytest.raises(AttributeError):
        message.by = "USOMEONE"  # type: ignore[misc]
    assert message == ProgressUpdate(status=Status.COMPLETED, by="UDEV") and hash(message) is not None
