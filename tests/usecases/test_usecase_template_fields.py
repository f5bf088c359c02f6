"""The template's further fields, required fields and lead times through ChangeService on
the in-memory repository: what is stored, what is refused (keyed by field), who is told."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.clock import FakeClock
from domain.enums import Category, Status
from domain.intake import IntakeRejected
from domain.intents import IntentKind
from domain.model import AuditAction
from domain.policy import Policy
from domain.policy_loader import parse_policy
from domain.read_models import ProgressAction
from domain.service import ChangeService
from tests.support.change_forms import IMPLEMENTER, REQUESTER, change_form, low_risk_form, make_service
from tests.support.memory_repository import MemoryChangeRepository
from tests.support.policy_fixture import RULES_OFF, TEST_POLICY

HOSTILE = "<!channel> <@U123> <https://evil.example|ZZFORGED> &amp; *b*"
# The policy's own defaults: the documents' required fields and lead times.
DOCUMENTS = parse_policy(TEST_POLICY.replace(RULES_OFF, ""))


def documents_service(
    repo: MemoryChangeRepository, clock: FakeClock, policy: Policy = DOCUMENTS
) -> ChangeService:
    return make_service(repo, clock, policy=policy)


async def test_the_template_fields_are_stored_as_given(service: ChangeService, clock: FakeClock) -> None:
    form = change_form(
        clock,
        links=("https://github.com/org/api/pull/7", "  ", "http://wiki.example/runbook?x=1&y=2"),
        success_criteria=f"  p99 under 200 ms {HOSTILE} ",
        dependencies="The database migration CR-2026-0007",
        stakeholders=["UPRODUCT", "CSUPPORT", "UPRODUCT"],
        rollback_duration="15",
        rollback_triggers=HOSTILE,
    )

    change = await service.submit_change(form=form, requester=REQUESTER)

    draft = (await service.get_change(change_id=change.id)).draft
    assert draft.links == ("https://github.com/org/api/pull/7", "http://wiki.example/runbook?x=1&y=2")
    assert draft.success_criteria == f"p99 under 200 ms {HOSTILE}"
    assert draft.dependencies == "The database migration CR-2026-0007"
    assert draft.stakeholders == ("UPRODUCT", "CSUPPORT")
    assert (draft.rollback_minutes, draft.rollback_triggers) == (15, HOSTILE)


async def test_none_of_them_is_needed_by_default_and_they_stay_empty(
    service: ChangeService, clock: FakeClock
) -> None:
    change = await service.submit_change(form=change_form(clock), requester=REQUESTER)
    draft = change.draft
    assert (draft.links, draft.stakeholders, draft.rollback_minutes) == ((), (), None)
    assert (draft.success_criteria, draft.dependencies, draft.rollback_triggers) == ("", "", "")


BAD = [
    ({"links": ("javascript:alert(1)",)}, "links", "not a web address"),
    ({"links": ("https://evil.example|ZZFORGED",)}, "links", "Link 1"),
    ({"links": ("https://ok.example", "<https://evil.example>")}, "links", "Link 2"),
    ({"links": ("https://a.example/x y",)}, "links", "not a web address"),
    ({"links": ("ftp://files.example/x",)}, "links", "not a web address"),
    ({"links": ("https:///no-host",)}, "links", "not a web address"),
    ({"links": ("https://host.example:port/",)}, "links", "not a web address"),
    ({"links": ("https://ünïcode.example",)}, "links", "not a web address"),
    ({"links": ("https://x.example/" + "a" * 500,)}, "links", "keep each link to 500"),
    ({"links": tuple(f"https://x.example/{i}" for i in range(11))}, "links", "at most 10 links"),
    ({"stakeholders": ["#general"]}, "stakeholders", "from the lists"),
    ({"stakeholders": [f"U{i:04d}" for i in range(21)]}, "stakeholders", "at most 20"),
    ({"rollback_duration": "soon"}, "rollback_duration", "whole number"),
    ({"rollback_duration": "-1"}, "rollback_duration", "between 0"),
    ({"success_criteria": "s" * 2501}, "success_criteria", "keep it to 2500"),
    ({"dependencies": "d" * 2501}, "dependencies", "keep it to 2500"),
    ({"rollback_triggers": "r" * 2501}, "rollback_triggers", "keep it to 2500"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
async def test_a_bad_field_is_refused_under_its_own_name_and_nothing_is_stored(
    service: ChangeService,
    repo: MemoryChangeRepository,
    clock: FakeClock,
    overrides: dict,
    field: str,
    fragment: str,
) -> None:
    with pytest.raises(IntakeRejected) as refused:
        await service.submit_change(form=change_form(clock, **overrides), requester=REQUESTER)
    assert set(refused.value.errors) == {field}
    assert fragment.lower() in refused.value.errors[field].lower()
    assert await repo.get_change("CR-2026-0001") is None


async def test_the_documents_require_a_test_plan_for_normal_and_major_changes(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = documents_service(repo, clock)
    for category in ("normal", "major"):
        form = change_form(clock, starts_in=timedelta(days=8), category=category, implementation_plan="Steps")
        with pytest.raises(IntakeRejected) as refused:
            await service.submit_change(form=form, requester=REQUESTER)
        assert refused.value.errors == {"test_plan": f"{category.capitalize()} changes need a test plan."}
    filed = await service.submit_change(
        form=change_form(clock, test_plan="Smoke tests on staging."), requester=REQUESTER
    )
    assert filed.draft.test_plan == "Smoke tests on staging."
    standard = await service.submit_change(
        form=low_risk_form(clock, category="standard", catalog="cache-clear", services=["redis-cache"]),
        requester=REQUESTER,
    )
    assert standard.status is Status.APPROVED  # a pre-approved procedure needs none


async def test_a_policy_requires_further_fields_per_category_all_reported_at_once(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    policy = parse_policy(
        TEST_POLICY.replace(RULES_OFF, "lead_time: {}\n")
        + "required_fields:\n  normal: [links, rollback_duration, stakeholders, success_criteria]\n"
    )
    service = documents_service(repo, clock, policy)

    with pytest.raises(IntakeRejected) as refused:
        await service.submit_change(form=change_form(clock, title=""), requester=REQUESTER)

    assert set(refused.value.errors) == {
        "title",
        "links",
        "rollback_duration",
        "stakeholders",
        "success_criteria",
    }
    assert refused.value.errors["rollback_duration"] == "Normal changes need how long a rollback takes."
    filled = change_form(
        clock,
        links=("https://tickets.example/CHG-1",),
        rollback_duration="0",  # zero minutes is an answer
        stakeholders=["CSUPPORT"],
        success_criteria="Error rate flat",
    )
    assert (await service.submit_change(form=filled, requester=REQUESTER)).draft.rollback_minutes == 0


async def test_a_normal_change_sooner_than_its_lead_time_is_refused_with_the_next_allowed_start(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = documents_service(repo, clock)
    form = change_form(clock, starts_in=timedelta(hours=3), test_plan="Smoke tests.")

    with pytest.raises(IntakeRejected) as refused:
        await service.submit_change(form=form, requester=REQUESTER)

    message = refused.value.errors["starts_at"]
    assert "Normal changes are filed at least 24 hours before they start." in message
    assert "Next allowed start: Tue 24 Nov 2026 07:00 GMT" in message
    assert "request an exception" in message
    assert await repo.get_change("CR-2026-0001") is None


async def test_a_major_change_needs_seven_days_and_emergencies_none(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = documents_service(repo, clock)
    major = change_form(
        clock, starts_in=timedelta(days=3), category="major", implementation_plan="Steps", test_plan="Tests"
    )
    with pytest.raises(IntakeRejected) as refused:
        await service.submit_change(form=major, requester=REQUESTER)
    assert "Major changes are filed at least 7 days before they start." in refused.value.errors["starts_at"]

    later = change_form(
        clock, starts_in=timedelta(days=8), category="major", implementation_plan="Steps", test_plan="Tests"
    )
    assert (await service.submit_change(form=later, requester=REQUESTER)).draft.category is Category.MAJOR
    soon = change_form(clock, starts_in=timedelta(minutes=10), category="emergency", test_plan="Tests")
    assert (await service.submit_change(form=soon, requester=REQUESTER)).draft.category is Category.EMERGENCY


async def test_a_short_lead_takes_the_exception_path_like_a_window(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = documents_service(repo, clock)
    form = change_form(
        clock,
        starts_in=timedelta(hours=3),
        test_plan="Smoke tests.",
        exception_requested=True,
        exception_reason=f"The certificate expires tonight {HOSTILE}",
    )

    change = await service.submit_change(form=form, requester=REQUESTER)

    assert change.status is Status.PENDING_APPROVAL
    assert [(s.role, s.purpose) for s in change.steps] == [
        ("tech_lead", ""),
        ("engineering_manager", "exception"),
    ]
    entry = next(e for e in change.audit if e.action is AuditAction.EXCEPTION_REQUESTED)
    assert entry.details == {
        "reason": f"The certificate expires tonight {HOSTILE}",
        "short_notice": "Normal changes are filed at least 24 hours before they start.",
    }
    without_reason = change_form(clock, starts_in=timedelta(hours=3), test_plan="x", exception_requested=True)
    with pytest.raises(IntakeRejected) as refused:
        await service.submit_change(form=without_reason, requester=REQUESTER)
    assert set(refused.value.errors) == {"exception_reason"}


async def test_rescheduling_is_not_held_to_the_lead_time(
    repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    service = documents_service(repo, clock)
    change = await service.submit_change(
        form=low_risk_form(clock, test_plan="Smoke tests."), requester=REQUESTER
    )
    soon = int((clock.now() + timedelta(hours=2)).timestamp())

    outcome = await service.reschedule(
        change_id=change.id, user=REQUESTER, starts_at=soon, ends_at=soon + 3600
    )

    assert outcome.refusal is None and outcome.change.draft.starts_at.timestamp() == soon


async def test_stakeholders_are_told_at_t_minus_24h_and_on_completion_with_the_policy_channels(
    service: ChangeService, repo: MemoryChangeRepository, clock: FakeClock
) -> None:
    form = low_risk_form(clock, implementer=IMPLEMENTER, stakeholders=["UPRODUCT", "CSTAKE", "CSUPPORT"])
    change = await service.submit_change(form=form, requester=REQUESTER)

    clock.set(change.draft.starts_at - timedelta(hours=24))
    await service.process_due_notices()
    heads_up = [i.channel for i in repo.intents_for(change.id) if i.kind is IntentKind.MESSAGE][-4:]
    assert heads_up == ["CCHANGES", "CSTAKE", "UPRODUCT", "CSUPPORT"]  # thread, then each stakeholder once

    clock.set(change.draft.starts_at + timedelta(minutes=5))
    await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.START)
    await service.record_progress(change_id=change.id, user=IMPLEMENTER, action=ProgressAction.COMPLETE)
    done = [i.channel for i in repo.intents_for(change.id) if i.kind is IntentKind.MESSAGE][-5:]
    assert done == ["CCHANGES", "CSTAKE", "UPRODUCT", "CSUPPORT", REQUESTER]
