"""validate_form: every problem on its own field key, all at once; never any other exception."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Category, Impact, Likelihood
from domain.intake import (
    LONG_TEXT_FIELDS,
    START_GRACE,
    ChangeForm,
    IntakeRejected,
    validate_form,
)
from domain.limits import MAX_DOWNTIME_MINUTES
from domain.model import ChangeDraft
from domain.policy_loader import parse_policy
from tests.support.policy_fixture import TEST_POLICY

POLICY = parse_policy(TEST_POLICY, source="test-policy.yml")
NOW = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
HOUR = 3600


def form(**changes: Any) -> ChangeForm:
    """A valid normal change; each test breaks one thing."""
    base = ChangeForm(
        title="Upgrade PostgreSQL to 16.4",
        category="normal",
        impact="medium",
        likelihood="low",
        services=["database"],
        starts_at=EPOCH + HOUR,
        ends_at=EPOCH + 2 * HOUR,
        description="Minor version upgrade of the primary.",
        rollback_plan="Fail over to the old replica.",
    )
    return dataclasses.replace(base, **changes)


def errors_of(f: ChangeForm) -> dict[str, str]:
    with pytest.raises(IntakeRejected) as info:
        validate_form(f, policy=POLICY, now=NOW)
    errors = info.value.errors
    assert errors, "IntakeRejected without errors"
    assert all(isinstance(v, str) and v for v in errors.values())
    return errors


def only_error(f: ChangeForm, key: str) -> str:
    errors = errors_of(f)
    assert set(errors) == {key}, errors
    return errors[key]


def ok(f: ChangeForm) -> ChangeDraft:
    return validate_form(f, policy=POLICY, now=NOW)


# --------------------------------------------------------------------------- happy paths


def test_valid_normal_form() -> None:
    draft = ok(
        form(title="  Upgrade   PostgreSQL\tto 16.4 ", services=["database", " database ", "redis-cache"])
    )
    assert draft.title == "Upgrade PostgreSQL to 16.4"
    assert draft.category is Category.NORMAL
    assert draft.impact is Impact.MEDIUM
    assert draft.likelihood is Likelihood.LOW
    assert draft.services == ("database", "redis-cache")
    assert draft.starts_at == NOW + timedelta(hours=1)
    assert draft.ends_at == NOW + timedelta(hours=2)
    assert draft.starts_at.tzinfo is not None
    assert draft.downtime_minutes == 0
    assert draft.catalog_id is None


def test_valid_standard_change_defaults_impact_and_likelihood_to_low() -> None:
    draft = ok(
        form(
            category="standard",
            catalog="security-patch",
            impact=None,
            likelihood=None,
            services=["kubernetes"],
            description="",
            rollback_plan="",
        )
    )
    assert draft.impact is Impact.LOW
    assert draft.likelihood is Likelihood.LOW
    assert draft.catalog_id == "security-patch"
    # the procedure's own description stands in when the requester gives none
    assert draft.description == "Apply a vendor security patch via the CI pipeline."


def test_standard_change_keeps_an_explicit_impact() -> None:
    draft = ok(form(category="standard", catalog="cache-clear", impact="high", likelihood=None))
    assert draft.impact is Impact.HIGH
    assert draft.likelihood is Likelihood.LOW


def test_catalog_without_service_restriction_accepts_any_known_service() -> None:
    assert ok(
        form(category="standard", catalog="cache-clear", services=["redis-cache", "database"])
    ).services == (
        "redis-cache",
        "database",
    )


def test_emergency_needs_no_rollback_plan() -> None:
    assert ok(form(category="emergency", rollback_plan=None)).category is Category.EMERGENCY


def test_downtime_parsed() -> None:
    assert ok(form(downtime=" 30 ")).downtime_minutes == 30
    assert ok(form(downtime="0")).downtime_minutes == 0
    assert ok(form(downtime=str(MAX_DOWNTIME_MINUTES))).downtime_minutes == MAX_DOWNTIME_MINUTES
    assert ok(form(downtime="   ")).downtime_minutes == 0


# --------------------------------------------------------------------------- one error each


@pytest.mark.parametrize("title", [None, "", "   ", "\t\n "])
def test_missing_title(title: str | None) -> None:
    only_error(form(title=title), "title")


def test_title_limit_from_policy() -> None:
    limit = POLICY.limits.title
    assert ok(form(title="x" * limit)).title == "x" * limit
    message = only_error(form(title="x" * (limit + 1)), "title")
    assert str(limit) in message


@pytest.mark.parametrize("category", [None, "", "Normal", "routine", "standard "])
def test_unknown_category(category: str | None) -> None:
    only_error(form(category=category), "category")


@pytest.mark.parametrize("category", ["normal", "major", "emergency"])
@pytest.mark.parametrize(
    ("field", "bad"), [("impact", None), ("impact", "huge"), ("likelihood", None), ("likelihood", "")]
)
def test_non_standard_needs_impact_and_likelihood(category: str, field: str, bad: str | None) -> None:
    extra = {"implementation_plan": "Steps."} if category == "major" else {}
    only_error(form(category=category, **{field: bad}, **extra), field)


@pytest.mark.parametrize("catalog", [None, "", "no-such-procedure"])
def test_standard_needs_a_catalog_entry(catalog: str | None) -> None:
    only_error(form(category="standard", catalog=catalog), "catalog")


def test_catalog_service_restriction() -> None:
    message = only_error(
        form(category="standard", catalog="security-patch", services=["kubernetes", "database"]), "services"
    )
    assert "database" in message
    assert "kubernetes" not in message.split("not")[-1]


def test_unknown_service() -> None:
    message = only_error(form(services=["database", "mainframe"]), "services")
    assert "mainframe" in message


@pytest.mark.parametrize("services", [[], [""], ["  ", ""]])
def test_no_services(services: list[str]) -> None:
    only_error(form(services=services), "services")


def test_start_in_the_past_beyond_grace() -> None:
    grace = int(START_GRACE.total_seconds())
    start = EPOCH - grace - 1
    only_error(form(starts_at=start, ends_at=EPOCH + HOUR), "starts_at")
    only_error(form(starts_at=EPOCH - 86400, ends_at=EPOCH + HOUR), "starts_at")


def test_start_inside_grace_is_accepted() -> None:
    grace = int(START_GRACE.total_seconds())
    assert grace == 300
    for start in (EPOCH - grace, EPOCH - 60, EPOCH):
        assert ok(form(starts_at=start, ends_at=EPOCH + HOUR)).starts_at == datetime.fromtimestamp(start, UTC)


def test_missing_times() -> None:
    only_error(form(starts_at=None), "starts_at")
    only_error(form(ends_at=None), "ends_at")
    assert set(errors_of(form(starts_at=None, ends_at=None))) == {"starts_at", "ends_at"}


@pytest.mark.parametrize("delta", [0, -1, -HOUR])
def test_end_not_after_start(delta: int) -> None:
    only_error(form(starts_at=EPOCH + HOUR, ends_at=EPOCH + HOUR + delta), "ends_at")


def test_absurd_timestamps_are_errors_not_crashes() -> None:
    only_error(form(starts_at=10**20), "starts_at")
    only_error(form(ends_at=-(10**20)), "ends_at")


@pytest.mark.parametrize("field", LONG_TEXT_FIELDS)
def test_long_text_limit_from_policy(field: str) -> None:
    limit = POLICY.limits.text
    draft = ok(form(**{field: "y" * limit}))
    assert getattr(draft, field) == "y" * limit
    message = only_error(form(**{field: "y" * (limit + 1)}), field)
    assert str(limit) in message


@pytest.mark.parametrize("category", ["normal", "major"])
@pytest.mark.parametrize("plan", [None, "", "   "])
def test_rollback_plan_required_for_normal_and_major(category: str, plan: str | None) -> None:
    extra = {"implementation_plan": "Steps."} if category == "major" else {}
    only_error(form(category=category, rollback_plan=plan, **extra), "rollback_plan")


@pytest.mark.parametrize("plan", [None, "", "  "])
def test_implementation_plan_required_for_major(plan: str | None) -> None:
    only_error(form(category="major", implementation_plan=plan), "implementation_plan")
    # ... and only for major
    assert ok(form(category="normal", implementation_plan=plan)).implementation_plan == ""


def test_description_required_unless_standard() -> None:
    only_error(form(description="  "), "description")


@pytest.mark.parametrize(
    "downtime", ["abc", "1.5", "-1", "-30", str(MAX_DOWNTIME_MINUTES + 1), "9" * 40, "10 min"]
)
def test_bad_downtime(downtime: str) -> None:
    only_error(form(downtime=downtime), "downtime")


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(
        ChangeForm(
            title="",
            category="major",
            impact="enormous",
            likelihood=None,
            services=["mainframe"],
            starts_at=EPOCH - 86400,
            ends_at=EPOCH - 2 * 86400,
            description="",
            justification="z" * (POLICY.limits.text + 1),
            downtime="soon",
        )
    )
    assert set(errors) == {
        "title",
        "impact",
        "likelihood",
        "services",
        "starts_at",
        "ends_at",
        "description",
        "justification",
        "rollback_plan",
        "implementation_plan",
        "downtime",
    }


def test_over_long_required_text_reports_the_length_not_absence() -> None:
    errors = errors_of(
        form(
            category="major",
            rollback_plan="r" * (POLICY.limits.text + 1),
            implementation_plan="i" * (POLICY.limits.text + 1),
        )
    )
    assert set(errors) == {"rollback_plan", "implementation_plan"}
    assert str(POLICY.limits.text) in errors["rollback_plan"]
    assert str(POLICY.limits.text) in errors["implementation_plan"]


def test_intake_rejected_message_lists_fields() -> None:
    with pytest.raises(IntakeRejected) as info:
        validate_form(form(title="", downtime="x"), policy=POLICY, now=NOW)
    assert "title:" in str(info.value)
    assert "downtime:" in str(info.value)


# --------------------------------------------------------------------------- properties

KNOWN = {
    "category": [c.value for c in Category],
    "impact": [i.value for i in Impact],
    "likelihood": [v.value for v in Likelihood],
    "catalog": [e.id for e in POLICY.standard_catalog],
}


def text_or(known: list[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.text(max_size=40), st.sampled_from(known))


def long_text() -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.text(max_size=60),
        st.integers(POLICY.limits.text - 2, POLICY.limits.text + 2).map(lambda n: "t" * n),
    )


epochs = st.one_of(
    st.none(),
    st.integers(EPOCH - 2 * HOUR, EPOCH + 48 * HOUR),
    st.integers(-(2**70), 2**70),
)

any_forms = st.builds(
    ChangeForm,
    title=st.one_of(st.none(), st.text(max_size=200)),
    category=text_or(KNOWN["category"]),
    catalog=text_or(KNOWN["catalog"]),
    impact=text_or(KNOWN["impact"]),
    likelihood=text_or(KNOWN["likelihood"]),
    services=st.lists(st.one_of(st.text(max_size=20), st.sampled_from(POLICY.services)), max_size=5),
    starts_at=epochs,
    ends_at=epochs,
    description=long_text(),
    justification=long_text(),
    implementation_plan=long_text(),
    rollback_plan=long_text(),
    test_plan=long_text(),
    downtime=st.one_of(st.none(), st.text(max_size=12), st.integers(-10, MAX_DOWNTIME_MINUTES + 10).map(str)),
)


def check_draft(f: ChangeForm, draft: ChangeDraft) -> None:
    assert draft.ends_at > draft.starts_at
    assert draft.starts_at >= NOW - START_GRACE
    assert set(draft.services) <= set(POLICY.services)
    assert draft.services
    assert len(draft.services) == len(set(draft.services))
    assert draft.title and len(draft.title) <= POLICY.limits.title
    assert 0 <= draft.downtime_minutes <= MAX_DOWNTIME_MINUTES
    for name in LONG_TEXT_FIELDS:
        assert len(getattr(draft, name)) <= POLICY.limits.text
    if draft.category is Category.STANDARD:
        entry = POLICY.catalog_entry(draft.catalog_id or "")
        assert entry is not None
        assert not entry.services or set(draft.services) <= set(entry.services)
    else:
        assert draft.catalog_id is None
        assert draft.description


@settings(max_examples=300, deadline=None)
@given(f=any_forms)
def test_arbitrary_input_only_ever_raises_intake_rejected(f: ChangeForm) -> None:
    try:
        draft = validate_form(f, policy=POLICY, now=NOW)
    except IntakeRejected as exc:
        assert exc.errors
        assert set(exc.errors) <= {field.name for field in dataclasses.fields(ChangeForm)}
    else:
        check_draft(f, draft)


@st.composite
def valid_forms(draw: st.DrawFn) -> ChangeForm:
    category = draw(st.sampled_from(list(Category)))
    words = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
    catalog = None
    services = draw(st.lists(st.sampled_from(POLICY.services), min_size=1, max_size=4))
    if category is Category.STANDARD:
        entry = draw(st.sampled_from(POLICY.standard_catalog))
        catalog = entry.id
        if entry.services:
            services = draw(st.lists(st.sampled_from(entry.services), min_size=1, max_size=3))
    start = draw(st.integers(EPOCH - int(START_GRACE.total_seconds()), EPOCH + 30 * 86400))
    return ChangeForm(
        title=draw(words),
        category=category.value,
        catalog=catalog,
        impact=draw(st.sampled_from(KNOWN["impact"])),
        likelihood=draw(st.sampled_from(KNOWN["likelihood"])),
        services=services,
        starts_at=start,
        ends_at=start + draw(st.integers(1, 7 * 86400)),
        description=draw(words),
        implementation_plan=draw(words),
        rollback_plan=draw(words),
        downtime=draw(st.one_of(st.none(), st.integers(0, MAX_DOWNTIME_MINUTES).map(str))),
    )


@settings(max_examples=200, deadline=None)
@given(f=valid_forms())
def test_well_formed_input_always_validates(f: ChangeForm) -> None:
    draft = validate_form(f, policy=POLICY, now=NOW)
    check_draft(f, draft)
    assert draft.services == tuple(dict.fromkeys(f.services))
