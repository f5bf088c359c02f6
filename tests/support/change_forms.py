"""Forms and a ChangeService for the use-case tests: the test policy, a fake clock and the
in-memory repository (or any other ChangeRepository handed in)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.clock import FakeClock
from domain.emergency import EmergencyForm
from domain.intake import ChangeForm
from domain.policy import Policy
from domain.policy_loader import parse_policy
from domain.ports import ChangeRepository
from domain.service import ChangeService
from tests.support.memory_repository import MemoryDirectory, MemoryNotifier
from tests.support.policy_fixture import MANAGERS, TEST_POLICY

REQUESTER = "UREQ"
IMPLEMENTER = "UIMPL"
LEADS = ("ULEAD1", "ULEAD2")
CTO = "UCTO"


def policy_with(extra: str = "") -> Policy:
    """The suite's policy, with `extra` YAML keys appended (e.g. 'start_override_roles: [cto]')."""
    return parse_policy(TEST_POLICY + extra)


def make_service(
    repository: ChangeRepository,
    clock: FakeClock,
    *,
    policy: Policy | None = None,
    notifier: MemoryNotifier | None = None,
) -> ChangeService:
    return ChangeService(
        repository=repository,
        directory=MemoryDirectory({"SMANAGERS": MANAGERS}),
        notifier=notifier or MemoryNotifier(),
        clock=clock,
        policy=policy or policy_with(),
    )


def change_form(
    clock: FakeClock, *, starts_in: timedelta = timedelta(days=2), **overrides: Any
) -> ChangeForm:
    """A valid normal change of medium risk (one tech lead approves), starting in two days
    for an hour; `overrides` set any ChangeForm field."""
    start = int((clock.now() + starts_in).timestamp())
    fields: dict[str, Any] = {
        "title": "Upgrade the API gateway",
        "category": "normal",
        "impact": "medium",
        "likelihood": "medium",
        "services": ["api-server"],
        "starts_at": start,
        "ends_at": start + 3600,
        "description": "Roll out gateway 2.4 with the new TLS ciphers.",
        "rollback_plan": "Redeploy 2.3 from the previous release tag.",
        **overrides,
    }
    return ChangeForm(**fields)


def low_risk_form(clock: FakeClock, **overrides: Any) -> ChangeForm:
    """Low impact, low likelihood: the test policy approves it on submission."""
    return change_form(clock, impact="low", likelihood="low", **overrides)


def emergency_form(**overrides: Any) -> EmergencyForm:
    fields: dict[str, Any] = {
        "title": "Roll back checkout 4.2",
        "severity": "P1",
        "services": ["api-server"],
        "broken": "Checkout returns 500s since the 4.2 deploy",
        "fix": "Roll back to 4.1",
        "rollback": "Redeploy 4.2",
        "incident": "INC-42",
        **overrides,
    }
    return EmergencyForm(**fields)
