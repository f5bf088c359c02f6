"""The REST API's request bodies read into what the use cases take: a filed change into
the form's `ChangeForm` (so the form's validation and policy apply unchanged), an event
into a `PipelineEvent`. Each problem is keyed by the JSON field it is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.gates import PipelineEvent
from domain.intake import USER_ID, ChangeForm, IntakeRejected, validate_form
from domain.limits import MAX_NOTES, MAX_REASON
from domain.model import ChangeSource
from domain.policy import Policy

TEXT_FIELDS = (
    "title",
    "category",
    "impact",
    "likelihood",
    "description",
    "justification",
    "implementation_plan",
    "rollback_plan",
    "test_plan",
    "standard_procedure",
    "implementer",
    "exception_reason",
    "success_criteria",
    "dependencies",
    "rollback_triggers",
)
OTHER_FIELDS = (
    "services",
    "starts_at",
    "ends_at",
    "downtime_minutes",
    "requester",
    "source",
    "links",
    "stakeholders",
    "rollback_minutes",
)
CHOICES = ("confirm_conflicts",)
CHANGE_FIELDS = frozenset((*TEXT_FIELDS, *OTHER_FIELDS, *CHOICES))
SOURCE_FIELDS = frozenset(("kind", "url", "ref"))
EVENT_FIELDS = frozenset(("event", "notes"))
MAX_TEXT = 20_000  # far above any policy's limit: the form's own check gives the message
MAX_SERVICES = 50
MAX_LIST = 100  # links or stakeholders read at most; the form's check says how many it takes
MAX_EMAIL = 254
# The form's field names where the API's differ.
FORM_TO_API = {
    "catalog": "standard_procedure",
    "downtime": "downtime_minutes",
    "rollback_duration": "rollback_minutes",
}
DEFAULT_SOURCE = ChangeSource(kind="api")
FORM_HINT = "Or tick 'request an exception' and say why."
API_HINT = "Or give an exception_reason saying why."


class BodyRejected(Exception):
    """The body's fields are wrong: one message per field, as JSON field names."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ChangeRequestBody:
    form: ChangeForm
    requester: str  # a Slack user id, or an email still to look up
    source: ChangeSource
    confirm_conflicts: bool

    @property
    def requester_is_email(self) -> bool:
        return "@" in self.requester


def api_errors(form_errors: dict[str, str]) -> dict[str, str]:
    """The form's field errors under the API's field names and wording."""
    return {FORM_TO_API.get(k, k): v.replace(FORM_HINT, API_HINT) for k, v in form_errors.items()}


def _text(body: dict[str, Any], name: str, errors: dict[str, str], *, limit: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors[name] = "Must be a string."
        return None
    problem = _string_problem(value, limit)
    if problem:
        errors[name] = problem
        return None
    return value


def _string_problem(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"Keep it to {limit} characters (it has {len(value)})."
    if "\x00" in value:
        return "Must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode text (no lone surrogates)."
    return None


def _moment(body: dict[str, Any], name: str, errors: dict[str, str]) -> int | None:
    value = body.get(name)
    if value is None:
        return None  # the form's check says it is needed
    if not isinstance(value, str) or len(value) > 64:
        errors[name] = "Give an ISO 8601 time with its UTC offset, like 2026-11-25T10:00:00+00:00."
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors[name] = "Give an ISO 8601 time with its UTC offset, like 2026-11-25T10:00:00+00:00."
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors[name] = "Give the time with its UTC offset (like +00:00 or Z): without one it is ambiguous."
        return None
    try:
        return int(moment.timestamp())
    except (OverflowError, OSError, ValueError):
        errors[name] = "That time is out of range."
        return None


def _services(body: dict[str, Any], errors: dict[str, str]) -> list[str]:
    value = body.get("services")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        errors["services"] = "Must be a list of service names."
        return []
    if len(value) > MAX_SERVICES:
        errors["services"] = f"Name at most {MAX_SERVICES} services."
        return []
    problems = [p for p in (_string_problem(s, 200) for s in value) if p]
    if problems:
        errors["services"] = problems[0]
        return []
    return list(value)


def _downtime(body: dict[str, Any], errors: dict[str, str], name: str = "downtime_minutes") -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = "Must be a whole number of minutes."
        return None
    return str(value)


def _strings(body: dict[str, Any], name: str, errors: dict[str, str], *, what: str) -> list[str]:
    """A list of strings (links, stakeholders); what each must be, the form's check says."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[name] = f"Must be a list of {what}."
        return []
    if len(value) > MAX_LIST:
        errors[name] = f"Give at most {MAX_LIST} {what}."
        return []
    problems = [p for p in (_string_problem(v, 2000) for v in value) if p]
    if problems:
        errors[name] = problems[0]
        return []
    return list(value)


def _source(body: dict[str, Any], errors: dict[str, str]) -> ChangeSource:
    value = body.get("source")
    if value is None:
        return DEFAULT_SOURCE
    if not isinstance(value, dict):
        errors["source"] = "Must be an object with kind, url and ref."
        return DEFAULT_SOURCE
    unknown = sorted(str(k) for k in value if k not in SOURCE_FIELDS)
    fields: dict[str, str | None] = {}
    for name in sorted(SOURCE_FIELDS):
        raw = value.get(name)
        if raw is not None and (not isinstance(raw, str) or _string_problem(raw, 2000)):
            errors["source"] = f"source.{name} must be a string of at most 2000 characters."
            return DEFAULT_SOURCE
        fields[name] = raw
    if unknown:
        errors["source"] = f"Unknown field in source: {', '.join(unknown)[:200]}."
        return DEFAULT_SOURCE
    return ChangeSource(kind=fields["kind"] or "api", url=fields["url"], ref=fields["ref"])


def _requester(body: dict[str, Any], errors: dict[str, str]) -> str:
    value = _text(body, "requester", errors, limit=MAX_EMAIL)
    requester = (value or "").strip()
    if "requester" in errors:
        return ""
    if not requester:
        errors["requester"] = "Say who files the change: a Slack user id (U…) or their email."
    elif "@" not in requester and not USER_ID.match(requester):
        errors["requester"] = "Give a Slack user id (like U012ABCDEF) or the email of a Slack user."
    return requester


def parse_change(body: dict[str, Any], *, policy: Policy, now: datetime) -> ChangeRequestBody:
    """The body of `POST /api/v1/changes`, or BodyRejected naming each bad field (with
    the form's own complaints about the rest)."""
    errors = {str(k)[:100]: "Unknown field." for k in body if k not in CHANGE_FIELDS}
    texts = {name: _text(body, name, errors) for name in TEXT_FIELDS}
    confirm = body.get("confirm_conflicts", False)
    if not isinstance(confirm, bool):
        errors["confirm_conflicts"] = "Must be true or false."
    exception_reason = texts["exception_reason"]
    if exception_reason is not None and len(exception_reason) > MAX_REASON:
        errors["exception_reason"] = f"Keep the reason to {MAX_REASON} characters."
    form = ChangeForm(
        title=texts["title"],
        category=texts["category"],
        catalog=texts["standard_procedure"],
        impact=texts["impact"],
        likelihood=texts["likelihood"],
        services=_services(body, errors),
        starts_at=_moment(body, "starts_at", errors),
        ends_at=_moment(body, "ends_at", errors),
        description=texts["description"],
        justification=texts["justification"],
        implementation_plan=texts["implementation_plan"],
        rollback_plan=texts["rollback_plan"],
        test_plan=texts["test_plan"],
        downtime=_downtime(body, errors),
        implementer=texts["implementer"],
        exception_requested=bool((exception_reason or "").strip()),
        exception_reason=exception_reason,
        links=tuple(_strings(body, "links", errors, what="http(s) URLs")),
        success_criteria=texts["success_criteria"],
        dependencies=texts["dependencies"],
        stakeholders=_strings(body, "stakeholders", errors, what="Slack user and channel ids"),
        rollback_duration=_downtime(body, errors, "rollback_minutes"),
        rollback_triggers=texts["rollback_triggers"],
    )
    requester = _requester(body, errors)
    source = _source(body, errors)
    if errors:
        raise BodyRejected({**_form_errors(form, policy=policy, now=now), **errors})
    return ChangeRequestBody(form=form, requester=requester, source=source, confirm_conflicts=bool(confirm))


def _form_errors(form: ChangeForm, *, policy: Policy, now: datetime) -> dict[str, str]:
    """What the form's own check says too, so one answer lists every problem."""
    try:
        validate_form(form, policy=policy, now=now)
    except IntakeRejected as exc:
        return api_errors(exc.errors)
    return {}


def parse_event(body: dict[str, Any]) -> tuple[PipelineEvent, str]:
    """The body of `POST /api/v1/changes/{id}/events`, or BodyRejected."""
    errors = {str(k)[:100]: "Unknown field." for k in body if k not in EVENT_FIELDS}
    raw = body.get("event")
    event = None
    if not isinstance(raw, str) or raw not in {e.value for e in PipelineEvent}:
        errors["event"] = f"Must be one of: {', '.join(e.value for e in PipelineEvent)}."
    else:
        event = PipelineEvent(raw)
    notes = _text(body, "notes", errors, limit=MAX_NOTES) or ""
    if errors or event is None:
        raise BodyRejected(errors)
    return event, notes
