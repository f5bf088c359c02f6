"""Emergency changes: the short declaration form, and the 24-hour post-approval chase."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.enums import Category, Impact, Likelihood
from domain.intake import IntakeRejected
from domain.limits import MAX_INCIDENT
from domain.model import ChangeDraft
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
    texts = {name: (getattr(form, name) or "").strip() for name in ("broken", "fix", "rollback")}
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
        implementer=requester,
        severity=form.severity,
        incident_ref=incident or None,
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
