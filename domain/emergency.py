"""Emergency changes: the short declaration form (or the full one with category emergency),
who approves before and after the fix, and the 24-hour post-approval chase."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.enums import Category, Impact, Likelihood
from domain.intake import USER_ID, ChangeForm, IntakeRejected, validate_source
from domain.limits import MAX_INCIDENT
from domain.model import AuditAction, Change, ChangeDraft, ChangeSource, StepSnapshot
from domain.policy import Emergency, Policy
from domain.timeline import PlannedNotice

POST_REMINDER = "post_reminder"
POST_DEADLINE = "post_deadline"
ON_CALL_ROLE = "on_call"
SEVERITY_IMPACT = (Impact.CRITICAL, Impact.HIGH, Impact.MEDIUM)


@dataclass
class EmergencyForm:
    title: str | None = None
    services: list[str] = field(default_factory=list)
    broken: str | None = None
    fix: str | None = None
    rollback: str | None = None
    incident: str | None = None
    severity: str | None = None
    # Only from the full form (category emergency): kept on the change as the form said.
    justification: str | None = None
    test_plan: str | None = None
    implementer: str | None = None
    source: ChangeSource | None = None  # the pipeline filing it (the REST API)


# The full form's fields for the declaration's: its errors shown where they were typed.
FROM_CHANGE_FORM = {
    "broken": "description",
    "fix": "implementation_plan",
    "rollback": "rollback_plan",
    "severity": "impact",
}
LONG_TEXTS = ("broken", "fix", "rollback", "justification", "test_plan")


def from_change_form(form: ChangeForm, policy: Policy) -> EmergencyForm:
    """The full form with category emergency, as a declaration: its impact picks the
    severity (critical the first, high the second, else the third; none: the first)."""
    severities = policy.emergency.severities
    rank = {Impact.CRITICAL.value: 0, Impact.HIGH.value: 1}.get(form.impact or "", 2 if form.impact else 0)
    return EmergencyForm(
        title=form.title,
        services=list(form.services),
        broken=form.description,
        fix=form.implementation_plan,
        rollback=form.rollback_plan,
        severity=severities[min(rank, len(severities) - 1)],
        justification=form.justification,
        test_plan=form.test_plan,
        implementer=form.implementer,
        source=form.source,
    )


def change_form_errors(errors: dict[str, str]) -> dict[str, str]:
    """A declaration's errors keyed by the full form's fields."""
    return {FROM_CHANGE_FORM.get(key, key): message for key, message in errors.items()}


def pre_approval_steps(policy: Policy) -> tuple[StepSnapshot, ...]:
    """Who must approve before the fix starts: the on-call first (members set once PagerDuty
    answers) when `go_ahead: on_call` or `pre_approval` names it, then each role named."""
    emergency = policy.emergency
    steps: list[StepSnapshot] = []
    if emergency.go_ahead == "on_call" or ON_CALL_ROLE in emergency.pre_approval:
        steps.append(StepSnapshot(ON_CALL_ROLE, 1, ()))
    for role in dict.fromkeys(emergency.pre_approval):
        if role != ON_CALL_ROLE:
            steps.append(StepSnapshot(role, 1, tuple(policy.roles[role])))
    return tuple(steps)


def post_approval_steps(policy: Policy) -> tuple[StepSnapshot, ...]:
    """Who approves after the fact: `approvals.by_category.emergency` when the policy sets
    it (an empty list: nobody), else `emergency.post_approval`'s role and count."""
    specs = policy.approvals.by_category.get(Category.EMERGENCY)
    if specs is None:
        post = policy.emergency.post_approval
        return (StepSnapshot(post.role, post.count, tuple(policy.roles[post.role])),)
    return tuple(StepSnapshot(s.role, s.count, tuple(policy.roles[s.role])) for s in specs)


def on_call_users(change: Change) -> tuple[str, ...]:
    """Who was handed the emergency as on call (the last answer), from its trail."""
    for entry in reversed(change.audit):
        if entry.action is AuditAction.ON_CALL_RESOLVED:
            return tuple(str(u) for u in entry.details.get("users") or ())
    return ()


def implicit_start(change: Change) -> datetime:
    """When an emergency finished without Start began: at its declaration, or at its
    go-ahead when it waited for one (so its duration is the real one)."""
    return change.approved_at or change.created_at


def required_declaration_channel(policy: Policy, *, channel: str) -> str | None:
    """The channel an emergency must be declared from when `channel` is not it, else None.
    Emergencies come from the incident they fix: with an incidents channel set, a message
    elsewhere cannot start one (its link would not be the incident's)."""
    incidents = policy.channels.incidents
    return incidents if incidents and channel != incidents else None


def validate_emergency(form: EmergencyForm, *, policy: Policy, now: datetime, requester: str) -> ChangeDraft:
    """Only what an engineer mid-incident can tell: everything else is filled in."""
    errors: dict[str, str] = {}
    title = " ".join((form.title or "").split())
    if not title:
        errors["title"] = "Give the emergency change a title."
    elif len(title) > policy.limits.title:
        errors["title"] = f"Keep the title to {policy.limits.title} characters (it has {len(title)})."
    services = tuple(dict.fromkeys(s.strip() for s in form.services if s and s.strip()))
    unknown = [s for s in services if s not in policy.services]
    if not services:
        errors["services"] = "Pick at least one affected service."
    elif unknown:
        errors["services"] = f"Unknown service: {', '.join(unknown)}. Pick from the list."
    texts = {name: (getattr(form, name) or "").strip() for name in LONG_TEXTS}
    for name, text in texts.items():
        if len(text) > policy.limits.text:
            errors[name] = f"Keep it to {policy.limits.text} characters and link to a document for the rest."
    if not texts["broken"]:
        errors.setdefault("broken", "Say what is broken.")
    if not texts["fix"]:
        errors.setdefault("fix", "Say what you change to fix it.")
    severities = policy.emergency.severities
    if form.severity not in severities:
        errors["severity"] = f"Choose a severity: {', '.join(severities)}."
    incident = (form.incident or "").strip()
    if len(incident) > MAX_INCIDENT:
        errors["incident"] = f"Keep the incident id or link to {MAX_INCIDENT} characters."
    implementer = (form.implementer or "").strip() or requester
    if not USER_ID.match(implementer) and implementer != requester:
        errors["implementer"] = "Pick the implementer from the list of people."
    source = validate_source(form.source, errors)
    if errors:
        raise IntakeRejected(errors)
    assert form.severity is not None
    rank = severities.index(form.severity)
    return ChangeDraft(
        title=title,
        category=Category.EMERGENCY,
        impact=SEVERITY_IMPACT[min(rank, len(SEVERITY_IMPACT) - 1)],
        likelihood=Likelihood.MEDIUM,
        services=services,
        starts_at=now,
        ends_at=now + policy.emergency.window,
        description=texts["broken"],
        implementation_plan=texts["fix"],
        rollback_plan=texts["rollback"],
        justification=texts["justification"],
        test_plan=texts["test_plan"],
        implementer=implementer,
        severity=form.severity,
        incident_ref=incident or None,
        source=source,
    )


def plan_post_approval(emergency: Emergency, *, declared_at: datetime) -> list[PlannedNotice]:
    """Reminders every `remind_every` up to `last_reminder`, then the deadline."""
    post = emergency.post_approval
    notices = []
    offset, number = post.remind_every, 1
    while post.remind_every > timedelta(0) and offset <= post.last_reminder and offset < post.within:
        notices.append(PlannedNotice(f"{POST_REMINDER}_{number}", declared_at + offset, None))
        offset += post.remind_every
        number += 1
    notices.append(PlannedNotice(POST_DEADLINE, declared_at + post.within, None))
    return notices


def is_post_notice(key: str) -> bool:
    return key.startswith((POST_REMINDER, POST_DEADLINE))
