"""How approvals are chased and which extra review steps rules add: the policy's
`approvals.deadline` and `approvals.extra_steps`.

Kept apart from policy.py, which imports it; references to roles and services are
checked against plain values (`approval_problems`), so it needs nothing from policy.py.
Defaults follow the process documents: 000 (standard same day, normal 2-3 days) and
003 (standard within 4 hours, normal 2-5 business days; a security review if applicable).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.durations import Duration
from domain.enums import Category, Risk


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _deadline_by_risk() -> dict[Risk, timedelta]:
    """000: a medium change is approved the same day (8 working hours), a high one in 2-3 days."""
    return {
        Risk.LOW: timedelta(hours=8),
        Risk.MEDIUM: timedelta(hours=8),
        Risk.HIGH: timedelta(days=3),
        Risk.CRITICAL: timedelta(days=3),
    }


def _deadline_by_category() -> dict[Category, timedelta]:
    """003: a standard change within 4 hours; a major one within 5 days (2-5 business days)."""
    return {Category.STANDARD: timedelta(hours=4), Category.MAJOR: timedelta(days=5)}


class ApprovalDeadline(_Strict):
    """How long approvers have, from filing, before a change is overdue: the category's
    deadline if set, else the risk's; never later than the window's start. The approvers
    who have not answered are reminded once at `remind_at` of it (0: no reminder) and
    again at the deadline, when the `escalate_to` role is told too."""

    enabled: bool = True
    by_risk: dict[Risk, Duration] = Field(default_factory=_deadline_by_risk)
    by_category: dict[Category, Duration] = Field(default_factory=_deadline_by_category)
    remind_at: float = Field(default=0.5, ge=0, lt=1)
    escalate_to: str | None = "engineering_manager"
    # Tell the requester (once) when the window opens and the change is still unapproved.
    flag_unapproved_start: bool = True

    @model_validator(mode="after")
    def _positive(self) -> ApprovalDeadline:
        for deadline in [*self.by_risk.values(), *self.by_category.values()]:
            if deadline <= timedelta(0):
                raise ValueError("deadlines must be longer than 0")
        return self

    def within(self, *, category: Category, risk: Risk) -> timedelta | None:
        """The approvers' time for a change of this category and risk (None: not chased)."""
        if not self.enabled:
            return None
        return self.by_category.get(category) or self.by_risk.get(risk)


class StepCondition(_Strict):
    """When a rule adds its step: every key given must match (a service: any of them)."""

    services: list[str] = Field(default_factory=list, max_length=100)
    categories: list[Category] = Field(default_factory=list)
    risks: list[Risk] = Field(default_factory=list)

    @model_validator(mode="after")
    def _says_something(self) -> StepCondition:
        if not (self.services or self.categories or self.risks):
            raise ValueError("give at least one of services, categories or risks")
        return self

    def matches(self, *, services: Sequence[str], category: Category, risk: Risk) -> bool:
        return (
            (not self.services or any(s in self.services for s in services))
            and (not self.categories or category in self.categories)
            and (not self.risks or risk in self.risks)
        )

    def describe(self) -> str:
        """What matched, for the audit: "services database; categories major"."""
        parts = [
            f"{name} {', '.join(str(v) for v in values)}"
            for name, values in (
                ("services", self.services),
                ("categories", self.categories),
                ("risks", self.risks),
            )
            if values
        ]
        return "; ".join(parts)


class ExtraStep(_Strict):
    """A review step a rule adds at filing (000/001/003: a security or DBA review when
    the change touches what they guard): `count` members of `role` must approve too."""

    when: StepCondition
    role: str
    count: int = Field(default=1, ge=1, le=20)


def extra_steps_for(
    rules: Sequence[ExtraStep],
    *,
    services: Sequence[str],
    category: Category,
    risk: Risk,
    roles_already: Sequence[str],
) -> list[ExtraStep]:
    """The rules that add a step to this change: matching ones whose role is not a step
    already (a role asked twice would need twice the approvals), each role once."""
    added: list[ExtraStep] = []
    seen = set(roles_already)
    for rule in rules:
        if rule.role in seen or not rule.when.matches(services=services, category=category, risk=risk):
            continue
        seen.add(rule.role)
        added.append(rule)
    return added


def approval_problems(
    *,
    deadline: ApprovalDeadline,
    extra_steps: Sequence[ExtraStep],
    roles: Mapping[str, Any],
    services: Sequence[str],
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(location, message) for each role or service the approval rules name but the
    policy does not define."""
    known = ", ".join(sorted(roles))
    if deadline.escalate_to is not None and deadline.escalate_to not in roles:
        yield (
            ("approvals", "deadline", "escalate_to"),
            f"unknown role '{deadline.escalate_to}' (roles: {known})",
        )
    for i, rule in enumerate(extra_steps):
        if rule.role not in roles:
            yield ("approvals", "extra_steps", i, "role"), f"unknown role '{rule.role}' (roles: {known})"
        for j, service in enumerate(rule.when.services):
            if service not in services:
                yield ("approvals", "extra_steps", i, "when", "services", j), f"unknown service '{service}'"
