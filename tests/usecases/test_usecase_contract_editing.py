"""Edits through ChangeService on the in-memory repository and on SQLite alike: every
field of the form rewritten, the risk and steps routed again, approvals voided, the new
approval time kept when the edit needs no sign-off. Where they differ, the fake is wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.editing import form_of
from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.model import AuditAction
from domain.service import ChangeService
from tests.support.change_forms import IMPLEMENTER, REQUESTER, change_form, make_service
from tests.support.contract_backends import Backend

HOSTILE = "<!channel> *bold* <@UEVIL> & <https://evil.example|click>"


@pytest.fixture
def service(backend: Backend, clock: FakeClock) -> ChangeService:
    return make_service(backend.repo, clock)


async def test_an_edit_rewrites_every_field_and_an_unneeded_approval_is_given_anew(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(
        form=change_form(clock, implementer=IMPLEMENTER), requester=REQUESTER
    )
    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    clock.advance(timedelta(minutes=5))
    form = replace(
        form_of(await service.get_change(change_id=change.id)),
        title=HOSTILE,
        impact="low",
        likelihood="low",
        services=["database", "redis-cache"],
        starts_at=change_form(clock).starts_at + 3600,  # type: ignore[operator]
        ends_at=change_form(clock).ends_at + 7200,  # type: ignore[operator]
        description=HOSTILE,
        justification="Vendor end of life.",
        implementation_plan="Blue/green.",
        test_plan="Smoke tests.",
        downtime="10",
        implementer=None,
    )

    outcome = await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    assert outcome.refusal is None
    stored = await service.get_change(change_id=change.id)
    draft = stored.draft
    assert (stored.status, stored.risk, stored.steps, stored.approvals) == (Status.APPROVED, Risk.LOW, (), ())
    assert stored.approved_at == clock.now()  # approved anew by the edit, not cleared by the void
    assert (draft.title, draft.description, draft.services) == (HOSTILE, HOSTILE, ("database", "redis-cache"))
    assert (draft.category, draft.impact, draft.likelihood) == (Category.NORMAL, Impact.LOW, Likelihood.LOW)
    assert (draft.justification, draft.implementation_plan, draft.test_plan) == (
        "Vendor end of life.",
        "Blue/green.",
        "Smoke tests.",
    )
    assert (draft.downtime_minutes, draft.implementer, stored.implementer) == (10, None, REQUESTER)
    assert draft.ends_at - draft.starts_at == timedelta(hours=2)
    assert [e.action for e in stored.audit][-3:] == [
        AuditAction.EDITED,
        AuditAction.APPROVALS_VOIDED,
        AuditAction.AUTO_APPROVED,
    ]


async def test_changes_requested_then_resubmitted_with_fresh_steps(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    asked = await service.request_changes(change_id=change.id, user="ULEAD2", comment=HOSTILE)
    form = replace(form_of(asked.change), impact="high", rollback_plan="Redeploy 2.3; rehearsed.")

    await service.edit_change(change_id=change.id, user=REQUESTER, form=form)

    stored = await service.get_change(change_id=change.id)
    assert (stored.id, stored.status, stored.risk) == (change.id, Status.PENDING_APPROVAL, Risk.HIGH)
    assert [(s.role, s.count) for s in stored.steps] == [("tech_lead", 2), ("engineering_manager", 1)]
    assert [e.action for e in stored.audit] == [
        AuditAction.SUBMITTED,
        AuditAction.CHANGES_REQUESTED,
        AuditAction.EDITED,
    ]
    assert stored.audit[1].details["comment"] == HOSTILE
