"""Validation of a submitted CR form: every problem at once, keyed by field,
so the modal can show each one inline and nothing is stored until all are fixed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from domain.bounds import window_bound_errors
from domain.enums import Category, Impact, Likelihood
from domain.limits import MAX_DOWNTIME_MINUTES, MAX_SOURCE_KIND, MAX_SOURCE_REF, MAX_SOURCE_URL
from domain.model import ChangeDraft, ChangeSource
from domain.policy import CatalogEntry, Limits, Policy
from domain.template_fields import (
    TemplateValues,
    check_links,
    check_minutes,
    check_stakeholders,
    check_texts,
    missing_required,
)

# A form takes a while to fill in; a start a few minutes ago is "now", not "the past".
START_GRACE = timedelta(minutes=5)
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SOURCE_KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

LONG_TEXT_FIELDS = (
    "description",
    "justification",
    "implementation_plan",
    "rollback_plan",
    "test_plan",
)
LABELS = {
    "description": "The description",
    "justification": "The justification",
    "implementation_plan": "The implementation plan",
    "rollback_plan": "The rollback plan",
    "test_plan": "The test plan",
}


@dataclass
class ChangeForm:
    """Raw values as they arrive from the modal; anything may be missing or wrong."""

    title: str | None = None
    category: str | None = None
    catalog: str | None = None
    impact: str | None = None
    likelihood: str | None = None
    services: list[str] = field(default_factory=list)
    starts_at: int | None = None
    ends_at: int | None = None
    description: str | None = None
    justification: str | None = None
    implementation_plan: str | None = None
    rollback_plan: str | None = None
    test_plan: str | None = None
    downtime: str | None = None
    implementer: str | None = None
    exception_requested: bool = False  # "request an exception" to a window or blackout
    exception_reason: str | None = None
    acknowledged_conflicts: tuple[str, ...] = ()  # conflicts the requester saw and submitted anyway
    source: ChangeSource | None = None  # the pipeline filing it; never set by the modal
    # The template's further fields (domain/template_fields.py).
    links: tuple[str, ...] = ()  # one per line in the form, a list in the API
    success_criteria: str | None = None
    dependencies: str | None = None
    stakeholders: list[str] = field(default_factory=list)  # Slack user and channel ids
    rollback_duration: str | None = None  # whole minutes
    rollback_triggers: str | None = None


class IntakeRejected(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _clean(value: str | None) -> str:
    return (value or "").strip()


E = TypeVar("E", Category, Impact, Likelihood)


def _enum(kind: type[E], value: str | None) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


def validate_form(form: ChangeForm, *, policy: Policy, now: datetime) -> ChangeDraft:
    """Return the draft, or raise IntakeRejected with one message per bad field.

    Each check adds its fields' messages to ``errors`` in form order, so the modal lists
    them top to bottom; the first problem of a field wins."""
    errors: dict[str, str] = {}
    title = _title(form.title, policy.limits, errors)
    category = _category(form.category, errors)
    catalog_entry = _catalog_entry(form.catalog, category, policy, errors)
    impact, likelihood = _risk(form.impact, form.likelihood, category, errors)
    services = _services(form.services, policy, catalog_entry, errors)
    starts_at, ends_at = _moment(form.starts_at), _moment(form.ends_at)
    errors.update(_window_errors(starts_at, ends_at, now=now, limits=policy.limits))
    texts = _long_texts(form, policy.limits, errors)
    _required_texts(texts, category, errors)
    downtime = _downtime(form.downtime, errors)
    implementer = _implementer(form.implementer, errors)
    source = _source(form.source, errors)
    template = _template(form, policy.limits, errors)
    missing_required(
        policy.required_fields,
        category,
        _present(form, texts, template, implementer=implementer),
        errors,
    )
    if errors:
        raise IntakeRejected(errors)
    assert category and impact and likelihood and starts_at and ends_at
    return ChangeDraft(
        title=title,
        category=category,
        impact=impact,
        likelihood=likelihood,
        services=services,
        starts_at=starts_at,
        ends_at=ends_at,
        description=texts["description"] or (catalog_entry.description if catalog_entry else ""),
        justification=texts["justification"],
        implementation_plan=texts["implementation_plan"],
        rollback_plan=texts["rollback_plan"],
        test_plan=texts["test_plan"],
        downtime_minutes=downtime,
        catalog_id=catalog_entry.id if catalog_entry else None,
        implementer=implementer,
        source=source,
        links=template.links,
        success_criteria=template.success_criteria,
        dependencies=template.dependencies,
        stakeholders=template.stakeholders,
        rollback_minutes=template.rollback_minutes,
        rollback_triggers=template.rollback_triggers,
    )


def _template(form: ChangeForm, limits: Limits, errors: dict[str, str]) -> TemplateValues:
    """Links, success criteria, dependencies, stakeholders and the rollback's duration
    and triggers, each checked on its own field."""
    links = check_links(form.links, errors)
    texts = check_texts(
        {
            "success_criteria": form.success_criteria,
            "dependencies": form.dependencies,
            "rollback_triggers": form.rollback_triggers,
        },
        limits.text,
        errors,
    )
    return TemplateValues(
        links=links,
        success_criteria=texts["success_criteria"],
        dependencies=texts["dependencies"],
        stakeholders=check_stakeholders(form.stakeholders, errors),
        rollback_minutes=check_minutes(form.rollback_duration, errors),
        rollback_triggers=texts["rollback_triggers"],
    )


def _present(
    form: ChangeForm, texts: dict[str, str], template: TemplateValues, *, implementer: str | None
) -> dict[str, bool]:
    """Which of the fields a policy may require were given."""
    return {
        **{name: bool(text) for name, text in texts.items()},
        "success_criteria": bool(template.success_criteria),
        "dependencies": bool(template.dependencies),
        "stakeholders": bool(template.stakeholders),
        "rollback_duration": template.rollback_minutes is not None,
        "rollback_triggers": bool(template.rollback_triggers),
        "links": bool(template.links),
        "downtime": bool(_clean(form.downtime)),
        "implementer": implementer is not None,
    }


def _title(raw: str | None, limits: Limits, errors: dict[str, str]) -> str:
    """The title on one line, required and within the policy's limit."""
    title = " ".join(_clean(raw).split())
    if not title:
        errors["title"] = "Give the change a title."
    elif len(title) > limits.title:
        errors["title"] = f"Keep the title to {limits.title} characters (it has {len(title)})."
    return title


def _category(raw: str | None, errors: dict[str, str]) -> Category | None:
    category = _enum(Category, raw)
    if category is None:
        errors["category"] = "Choose a category: standard, normal, major or emergency."
    return category


def _catalog_entry(
    raw: str | None, category: Category | None, policy: Policy, errors: dict[str, str]
) -> CatalogEntry | None:
    """A standard change is one of the policy's pre-approved procedures; others have none."""
    if category is not Category.STANDARD:
        return None
    entry = policy.catalog_entry(raw) if raw else None
    if entry is None:
        errors["catalog"] = (
            "A standard change must follow a pre-approved procedure: pick one, or file it as a normal change."
        )
    return entry


def _risk(
    raw_impact: str | None, raw_likelihood: str | None, category: Category | None, errors: dict[str, str]
) -> tuple[Impact | None, Likelihood | None]:
    """Impact and likelihood, required except for standard changes (low unless said)."""
    impact = _enum(Impact, raw_impact)
    likelihood = _enum(Likelihood, raw_likelihood)
    if category is Category.STANDARD:
        impact = impact or Impact.LOW
        likelihood = likelihood or Likelihood.LOW
    if impact is None:
        errors["impact"] = "Choose the impact if this change goes wrong."
    if likelihood is None:
        errors["likelihood"] = "Choose how likely it is to go wrong."
    return impact, likelihood


def _services(
    raw: list[str], policy: Policy, catalog_entry: CatalogEntry | None, errors: dict[str, str]
) -> tuple[str, ...]:
    """At least one known service, within the catalog entry's services if it names some."""
    services = tuple(dict.fromkeys(s.strip() for s in raw if s and s.strip()))
    unknown = [s for s in services if s not in policy.services]
    if not services:
        errors["services"] = "Pick at least one affected service."
    elif unknown:
        errors["services"] = f"Unknown service: {', '.join(unknown)}. Pick from the list."
    elif catalog_entry is not None and catalog_entry.services:
        outside = [s for s in services if s not in catalog_entry.services]
        if outside:
            errors["services"] = (
                f"'{catalog_entry.title}' is pre-approved only for "
                f"{', '.join(catalog_entry.services)}, not {', '.join(outside)}."
            )
    return services


def _long_texts(form: ChangeForm, limits: Limits, errors: dict[str, str]) -> dict[str, str]:
    """The long texts, trimmed, each within the policy's limit."""
    texts = {name: _clean(getattr(form, name)) for name in LONG_TEXT_FIELDS}
    for name, text in texts.items():
        if len(text) > limits.text:
            errors[name] = (
                f"{LABELS[name]} is {len(text)} characters; keep it to {limits.text} "
                "and link to a document for the rest."
            )
    return texts


def _required_texts(texts: dict[str, str], category: Category | None, errors: dict[str, str]) -> None:
    """Which texts a category needs: a description but for standard changes (the catalog
    has one), a rollback plan for normal and major, an implementation plan for major."""
    if category is not Category.STANDARD and not texts["description"] and "description" not in errors:
        errors["description"] = "Describe what will change."
    if category in (Category.NORMAL, Category.MAJOR) and not texts["rollback_plan"]:
        errors.setdefault("rollback_plan", "Normal and major changes need a documented rollback plan.")
    if category is Category.MAJOR and not texts["implementation_plan"]:
        errors.setdefault("implementation_plan", "Major changes need an implementation plan.")


def _downtime(raw: str | None, errors: dict[str, str]) -> int:
    """Expected downtime in whole minutes; none said is none expected."""
    raw_downtime = _clean(raw)
    if not raw_downtime:
        return 0
    try:
        downtime = int(raw_downtime)
    except ValueError:
        errors["downtime"] = "Downtime is a whole number of minutes."
        return 0
    if not 0 <= downtime <= MAX_DOWNTIME_MINUTES:
        errors["downtime"] = f"Downtime must be between 0 and {MAX_DOWNTIME_MINUTES} minutes."
    return downtime


def _implementer(raw: str | None, errors: dict[str, str]) -> str | None:
    implementer = _clean(raw) or None
    if implementer is not None and not USER_ID.match(implementer):
        errors["implementer"] = "Pick the implementer from the list of people."
    return implementer


def _source(raw: ChangeSource | None, errors: dict[str, str]) -> ChangeSource | None:
    """A pipeline's source, trimmed and bounded to what the card and the table hold."""
    if raw is None:
        return None
    kind = raw.kind.strip().lower()
    url = (raw.url or "").strip() or None
    ref = " ".join((raw.ref or "").split()) or None
    if len(kind) > MAX_SOURCE_KIND or not SOURCE_KIND.match(kind):
        errors["source"] = (
            f"The source kind is a lower-case name like github or api, at most {MAX_SOURCE_KIND} characters."
        )
    elif url is not None and (len(url) > MAX_SOURCE_URL or any(c.isspace() for c in url)):
        errors["source"] = f"The source URL is one link of at most {MAX_SOURCE_URL} characters."
    elif ref is not None and len(ref) > MAX_SOURCE_REF:
        errors["source"] = f"Keep the source ref to {MAX_SOURCE_REF} characters."
    return ChangeSource(kind=kind, url=url, ref=ref)


def validate_source(raw: ChangeSource | None, errors: dict[str, str]) -> ChangeSource | None:
    """A pipeline's source checked as the form's is (emergencies filed by a pipeline too)."""
    return _source(raw, errors)


def validate_window(
    starts: int | None, ends: int | None, *, now: datetime, limits: Limits
) -> tuple[datetime, datetime]:
    """The same window rules as the form, for rescheduling."""
    starts_at, ends_at = _moment(starts), _moment(ends)
    errors = _window_errors(starts_at, ends_at, now=now, limits=limits)
    if errors:
        raise IntakeRejected(errors)
    assert starts_at and ends_at
    return starts_at, ends_at


def _window_errors(
    starts_at: datetime | None, ends_at: datetime | None, *, now: datetime, limits: Limits
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if starts_at is None:
        errors["starts_at"] = "When does the change start?"
    elif starts_at < now - START_GRACE:
        errors["starts_at"] = "The start is in the past. Pick a time from now on."
    if ends_at is None:
        errors["ends_at"] = "When will the change be finished?"
    elif starts_at is not None and ends_at <= starts_at:
        errors["ends_at"] = "The end must be after the start."
    bounds = window_bound_errors(
        starts_at, ends_at, now=now, max_ahead=limits.max_ahead, max_duration=limits.max_duration
    )
    return {**bounds, **errors}


def _moment(epoch: int | None) -> datetime | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except (OverflowError, OSError, ValueError):
        return None
