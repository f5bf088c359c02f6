"""The gates use case through ChangeService: answering a gate (audited once per distinct
answer), filing a change for a pipeline, and a pipeline's progress reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Decision, Status
from domain.errors import ChangeNotFound
from domain.gates import GateAnswer, GateDecision, PipelineEvent
from domain.intake import IntakeRejected
from domain.model import AuditAction, Change, ChangeSource
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import IMPLEMENTER, REQUESTER, change_form, make_service, policy_with
from tests.support.memory_repository import MemoryChangeRepository

BOT = "api:deploy-bot"
SOURCE = ChangeSource(kind="github", url="https://github.com/example-org/api/actions/runs/42", ref="v2.4.0")


def gate_entries(change: Change) -> list[dict[str, object]]:
    return [e.details for e in change.audit if e.action is AuditAction.GATE_ANSWERED]


async def standard_change(service: ChangeService, clock: FakeClock) -> Change:
    """A pre-approved security patch filed by a pipeline, window in two days for an hour."""
    form = change_form(clock, category="standard", catalog="security-patch", rollback_plan="")
    return await service.file_change(form=form, requester=REQUESTER, source=SOURCE)


async def test_a_pipeline_files_a_change_exactly_as_the_form_does(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await standard_change(service, clock)

    assert (change.status, change.draft.source) == (Status.APPROVED, SOURCE)
    stored = await service.get_change(change_id=change.id)
    submitted = next(e for e in stored.audit if e.action is AuditAction.SUBMITTED)
    assert submitted.details["source"] == {"kind": "github", "url": SOURCE.url, "ref": "v2.4.0"}
    assert [e.action for e in stored.audit] == [AuditAction.SUBMITTED, AuditAction.AUTO_APPROVED]
    by_form = await service.submit_change(
        form=change_form(clock, starts_in=timedelta(days=5)), requester=REQUESTER
    )
    assert by_form.draft.source is None
    assert "source" not in by_form.audit[0].details


async def test_a_bad_source_is_refused_like_any_bad_field(service: ChangeService, clock: FakeClock) -> None:
    with pytest.raises(IntakeRejected) as caught:
        await service.file_change(
            form=change_form(clock), requester=REQUESTER, source=ChangeSource("Git Hub")
        )
    assert list(caught.value.errors) == ["source"]


async def test_the_gate_audits_each_distinct_answer_once(service: ChangeService, clock: FakeClock) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    waiting = GateAnswer(GateDecision.WAIT, f"{change.id} is waiting for approval: Tech lead 0/1")

    for _ in range(3):  # a pipeline polling
        assert await service.gate(change_id=change.id, service="api-server", asked_by=BOT) == waiting
    await service.gate(change_id=change.id.lower(), asked_by=BOT)  # no service: a separate answer
    await service.gate(change_id=change.id, service="api-server", asked_by="api:other")

    stored = await service.get_change(change_id=change.id)
    assert [(d["service"], d["asked_by"], d["decision"]) for d in gate_entries(stored)] == [
        ("api-server", BOT, "wait"),
        (None, BOT, "wait"),
        ("api-server", "api:other", "wait"),
    ]
    assert gate_entries(stored)[0]["reason"] == waiting.reason

    await service.decide(change_id=change.id, user="ULEAD1", decision=Decision.APPROVE)
    too_early = await service.gate(change_id=change.id, service="api-server", asked_by=BOT)
    assert too_early.decision is GateDecision.WAIT and "the gate opens 30 minutes before" in too_early.reason
    clock.set(change.draft.starts_at - timedelta(minutes=30))
    assert (
        await service.gate(change_id=change.id, service="api-server", asked_by=BOT)
    ).decision is GateDecision.GO
    await service.gate(change_id=change.id, service="api-server", asked_by=BOT)

    stored = await service.get_change(change_id=change.id)
    mine = [
        d["decision"] for d in gate_entries(stored) if d["asked_by"] == BOT and d["service"] == "api-server"
    ]
    assert mine == ["wait", "wait", "go"]
    assert all(e.actor == "changebot" for e in stored.audit if e.action is AuditAction.GATE_ANSWERED)


async def test_the_gate_of_an_unknown_change_is_not_found(service: ChangeService) -> None:
    with pytest.raises(ChangeNotFound):
        await service.gate(change_id="CR-2026-9999", asked_by=BOT)


async def test_a_freeze_stops_the_gate(service: ChangeService, clock: FakeClock) -> None:
    change = await standard_change(service, clock)
    clock.set(change.draft.starts_at)
    await service.start_freeze(user="UMGR1", reason="payments incident")

    answer = await service.gate(change_id=change.id, asked_by=BOT)
    assert answer.decision is GateDecision.STOP
    assert answer.reason.startswith("freeze in force: payments incident")


async def test_a_pipeline_reports_its_deploy_as_the_implementer_would(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await standard_change(service, clock)
    clock.set(change.draft.starts_at - timedelta(minutes=5))

    started = await service.report_event(
        change_id=change.id, event=PipelineEvent.STARTED, notes="", actor=BOT
    )
    assert started.refusal is None and started.change.status is Status.IN_PROGRESS
    done = await service.report_event(
        change_id=change.id, event=PipelineEvent.COMPLETED, notes="deployed v2.4.0", actor=BOT
    )
    assert done.refusal is None and done.change.status is Status.COMPLETED

    stored = await service.get_change(change_id=change.id)
    assert [(e.actor, e.action) for e in stored.audit][-2:] == [
        (BOT, AuditAction.STARTED),
        (BOT, AuditAction.COMPLETED),
    ]


async def test_a_failed_deploy_needs_notes_and_may_roll_back(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await standard_change(service, clock)
    clock.set(change.draft.starts_at)
    with pytest.raises(IntakeRejected):
        await service.report_event(change_id=change.id, event=PipelineEvent.FAILED, notes=" ", actor=BOT)

    failed = await service.report_event(
        change_id=change.id, event=PipelineEvent.FAILED, notes="health checks failed", actor=BOT
    )
    assert failed.change.status is Status.FAILED
    rolled = await service.report_event(
        change_id=change.id,
        event=PipelineEvent.ROLLED_BACK,
        notes="v2.3.9 redeployed",
        actor="github:example-org/api",
    )
    assert (rolled.refusal, rolled.change.status) == (None, Status.ROLLED_BACK)


async def test_a_pipelines_refusals_are_audited(service: ChangeService, clock: FakeClock) -> None:
    pending = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    clock.set(pending.draft.starts_at)

    outcome = await service.report_event(
        change_id=pending.id, event=PipelineEvent.STARTED, notes="", actor=BOT
    )

    assert outcome.refusal == "the change is pending approval, so it cannot start"
    stored = await service.get_change(change_id=pending.id)
    assert stored.status is Status.PENDING_APPROVAL
    refused = stored.audit[-1]
    assert (refused.actor, refused.action, refused.details["refusal"]) == (
        BOT,
        AuditAction.ACTION_REFUSED,
        outcome.refusal,
    )


async def test_a_pipeline_starts_from_when_its_gate_opens(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    """The start button's tolerance is 10 minutes here; the gate's is 30, and what the
    gate let go may start."""
    service = make_service(repo, clock, policy=policy_with("start_tolerance: 10m\ngates: {early: 30m}\n"))
    change = await standard_change(service, clock)
    clock.set(change.draft.starts_at - timedelta(minutes=20))

    person = await service.record_progress(change_id=change.id, user=REQUESTER, action=ProgressAction.START)
    assert person.refusal is not None and "its approved window opens" in person.refusal
    assert (await service.gate(change_id=change.id, asked_by=BOT)).decision is GateDecision.GO
    pipeline = await service.report_event(
        change_id=change.id, event=PipelineEvent.STARTED, notes="", actor=BOT
    )
    assert pipeline.refusal is None and pipeline.change.status is Status.IN_PROGRESS


async def test_only_a_pipeline_reports_pipeline_events(service: ChangeService, clock: FakeClock) -> None:
    change = await standard_change(service, clock)
    for actor in (IMPLEMENTER, "api:", "github:" + "x" * 40):
        with pytest.raises(ValueError, match="is not a pipeline"):
            await service.report_event(
                change_id=change.id, event=PipelineEvent.STARTED, notes="", actor=actor
            )


async def test_gates_on_sqlite(sqlite_service: ChangeService, clock: FakeClock) -> None:
    """The source, the gate's audit and a pipeline's report survive a real database."""
    change = await standard_change(sqlite_service, clock)
    assert (await sqlite_service.get_change(change_id=change.id)).draft.source == SOURCE
    clock.set(change.draft.starts_at)
    for _ in range(2):
        assert (await sqlite_service.gate(change_id=change.id, asked_by=BOT)).decision is GateDecision.GO
    started = await sqlite_service.report_event(
        change_id=change.id, event=PipelineEvent.STARTED, notes="", actor=BOT
    )
    assert started.refusal is None
    stored = await sqlite_service.get_change(change_id=change.id)
    assert stored.status is Status.IN_PROGRESS
    assert [d["decision"] for d in gate_entries(stored)] == ["go"]
    assert (await sqlite_service.gate(change_id=change.id, service="database", asked_by=BOT)).decision is (
        GateDecision.STOP
    )
