"""The rules of correcting a change, as plain values: who may edit, in which states, what
an edit changed and which of it the approvers judged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.editing import draft_changes, edit_refusal, form_of, window_text
from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.intake import validate_form
from domain.model import AuditAction, AuditEntry, Change, ChangeDraft, StepSnapshot
from modals.intake import edit_change_modal
from tests.support.change_forms import policy_with

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")
DRAFT = ChangeDraft(
    title="Upgrade the API gateway",
    category=Category.NORMAL,
    impact=Impact.MEDIUM,
    likelihood=Likelihood.MEDIUM,
    services=("api-server",),
    starts_at=NOW + timedelta(days=2),
    ends_at=NOW + timedelta(days=2, hours=1),
    description="Roll out 2.4.",
    rollback_plan="Redeploy 2.3.",
    downtime_minutes=5,
    implementer="UIMPL",
)


def change(**overrides: Any) -> Change:
    fields: dict[str, Any] = {
        "id": "CR-2026-0001",
        "draft": DRAFT,
        "risk": Risk.MEDIUM,
        "status": Status.PENDING_APPROVAL,
        "requester": "UREQ",
        "version": 2,
        "created_at": NOW,
        "updated_at": NOW,
        "steps": (StepSnapshot("tech_lead", 1, ("ULEAD1",)),),
    }
    return Change(**(fields | overrides))


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (Status.PENDING_APPROVAL, None),
        (Status.APPROVED, None),
        (Status.REJECTED, None),
        (Status.CHANGES_REQUESTED, None),
        (Status.IN_PROGRESS, "CR-2026-0001 is in progress: a change can only be edited before it starts"),
        (Status.COMPLETED, "CR-2026-0001 is completed: a change can only be edited before it starts"),
        (Status.CANCELLED, "CR-2026-0001 is cancelled: file a new change instead"),
    ],
)
def test_the_requester_edits_a_change_until_it_starts(status: Status, refusal: str | None) -> None:
    assert edit_refusal(change(status=status), "UREQ", manager=False, has_manager_role=False) == refusal


def test_others_may_not_edit_but_a_change_manager_may() -> None:
    pending = change()
    assert edit_refusal(pending, "UIMPL", manager=False, has_manager_role=False) == (
        "only the requester can edit CR-2026-0001"
    )
    assert edit_refusal(pending, "UX", manager=False, has_manager_role=True) == (
        "only the requester or a change manager can edit CR-2026-0001"
    )
    assert edit_refusal(pending, "UCM", manager=True, has_manager_role=True) is None


def test_an_emergency_is_not_edited() -> None:
    emergency = change(draft=replace(DRAFT, category=Category.EMERGENCY), status=Status.APPROVED)
    refusal = edit_refusal(emergency, "UREQ", manager=False, has_manager_role=False)
    assert refusal is not None and "emergency" in refusal


def test_the_form_of_a_change_validates_back_to_its_draft() -> None:
    policy = policy_with()
    assert validate_form(form_of(change()), policy=policy, now=NOW) == DRAFT


def test_the_form_carries_the_exception_its_steps_hold() -> None:
    exception = StepSnapshot("cto", 1, ("UCTO",), purpose="exception")
    asked = AuditEntry("UREQ", AuditAction.EXCEPTION_REQUESTED, NOW, {"reason": "Vendor deadline"})
    form = form_of(change(steps=(exception,), audit=(asked,)))
    assert (form.exception_requested, form.exception_reason) == (True, "Vendor deadline")
    assert form_of(change(audit=(asked,))).exception_requested is False  # no exception step any more


FULL = replace(
    DRAFT,
    links=("https://github.com/acme/api/pull/7",),
    success_criteria="p99 under 200 ms",
    dependencies="auth-service 3.1",
    stakeholders=("USUPPORT", "CSTATUS"),
    rollback_minutes=15,
    rollback_triggers="Checkout errors",
    test_plan="Smoke tests.",
)


def test_the_form_of_a_change_carries_the_template_fields_back_to_its_draft() -> None:
    assert validate_form(form_of(change(draft=FULL)), policy=policy_with(), now=NOW) == FULL


def test_an_edit_form_is_filled_in_with_the_people_channels_and_links() -> None:
    view = edit_change_modal(
        policy_with(), change_id="CR-2026-0001", form=form_of(change(draft=FULL)), now=NOW
    )
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert elements["stakeholders"]["initial_users"] == ["USUPPORT"]
    assert elements["stakeholder_channels"]["initial_conversations"] == ["CSTATUS"]
    assert elements["links"]["initial_value"] == "https://github.com/acme/api/pull/7"
    assert elements["rollback_duration"]["initial_value"] == "15"


def test_a_changed_plan_field_is_judged_and_new_stakeholders_are_not() -> None:
    new = replace(FULL, success_criteria="p99 under 150 ms", stakeholders=("USUPPORT",))
    changes = draft_changes(FULL, new, old_risk="medium", new_risk="medium", zone=LONDON)
    assert [(c.line(), c.judged) for c in changes] == [
        ("Success criteria changed", True),
        ("People and channels to notify changed", False),
    ]


def test_what_an_edit_changed_and_what_the_approvers_judged() -> None:
    new = replace(
        DRAFT,
        title="Upgrade the API gateway to 2.4",
        impact=Impact.HIGH,
        services=("api-server", "database"),
        starts_at=DRAFT.starts_at + timedelta(days=1),
        ends_at=DRAFT.ends_at + timedelta(days=1),
        description="",
        test_plan="Smoke tests.",
        implementer=None,
    )
    changes = draft_changes(DRAFT, new, old_risk="medium", new_risk="high", zone=LONDON)
    assert [(c.line(), c.judged) for c in changes] == [
        ("Title: Upgrade the API gateway → Upgrade the API gateway to 2.4", False),
        ("Impact: medium → high", True),
        ("Risk: medium → high", True),
        ("Services: api-server → api-server, database", True),
        ("Window: 2026-11-25 09:00–10:00 GMT → 2026-11-26 09:00–10:00 GMT", True),
        ("Implementer removed", True),
        ("Description removed", False),
        ("Test plan added", True),
    ]
    assert draft_changes(DRAFT, DRAFT, old_risk="medium", new_risk="medium", zone=LONDON) == []


def test_a_window_over_midnight_names_both_days() -> None:
    start = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert window_text(start, start + timedelta(hours=2), LONDON) == "2026-11-25 23:00–2026-11-26 01:00 GMT"
