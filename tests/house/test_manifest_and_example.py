"""The shipped Slack app manifest and the documented example policy stay valid."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from ruamel.yaml import YAML

from domain.enums import Category, Risk
from domain.policy import Policy
from domain.policy_loader import parse_policy
from domain.risk import DEFAULT_RISK_MATRIX
from tests.support.paths import ROOT

POLICY_FILE = ROOT / "policy.example.yml"
MANIFEST_FILE = ROOT / "manifest.yml"

# The sections changebot reads today; the rest are placeholders for upcoming features.
READ_TODAY = {
    "timezone",
    "channels",
    "roles",
    "role_labels",
    "services",
    "risk_matrix",
    "approvals",
    "standard_catalog",
    "limits",
    "group_cache_seconds",
    "timeline",
    "digest",
    "emergency",
    "oncall",
    "windows",
    "blackouts",
    "exceptions",
    "freeze_roles",
    "dependencies",
    "review",
    "cab",
    "report",
    "targets",
    "incident_roles",
    "start_tolerance",
    "start_override_roles",
    "reschedule",
    "gates",
    "integrations",
    "required_fields",
    "lead_time",
    "quiet_hours",
}
UPCOMING: set[str] = set()

KNOWN_BOT_SCOPES = {
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:join",
    "im:write",
    "usergroups:read",
    "users:read",
    "users:read.email",
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
}

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s|$)")


# ── policy.example.yml ──────────────────────────────────────────────


@pytest.fixture(scope="module")
def policy_text() -> str:
    return POLICY_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def policy(policy_text: str) -> Policy:
    return parse_policy(policy_text, source=str(POLICY_FILE))


def test_example_policy_parses(policy: Policy) -> None:
    assert policy.channels.changes.startswith("C")
    assert {"api-server", "database", "redis-cache", "s3-storage", "kubernetes", "monitoring"} <= set(
        policy.services
    )


def test_example_policy_covers_every_section(policy_text: str) -> None:
    top_level = {
        m["key"] for line in policy_text.splitlines() if (m := KEY_LINE.match(line)) and not m["indent"]
    }
    assert top_level == READ_TODAY | UPCOMING


def test_normal_medium_needs_one_tech_lead(policy: Policy) -> None:
    steps = policy.steps_for(category=Category.NORMAL, risk=Risk.MEDIUM)
    assert [(s.role, s.count) for s in steps] == [("tech_lead", 1)]


def test_risk_flow_follows_seed_002(policy: Policy) -> None:
    roles = {risk: [s.role for s in policy.steps_for(category=Category.NORMAL, risk=risk)] for risk in Risk}
    assert roles == {
        Risk.LOW: [],
        Risk.MEDIUM: ["tech_lead"],
        Risk.HIGH: ["engineering_manager"],
        Risk.CRITICAL: ["cto"],
    }
    assert policy.steps_for(category=Category.STANDARD, risk=Risk.HIGH) == []
    major = policy.steps_for(category=Category.MAJOR, risk=Risk.LOW)
    assert [s.role for s in major] == ["engineering_manager", "cto"]
    emergency = policy.steps_for(category=Category.EMERGENCY, risk=Risk.CRITICAL)
    assert [(s.role, s.count) for s in emergency] == [("engineering_manager", 1)]


def test_standard_catalog_has_seed_examples(policy: Policy) -> None:
    assert len(policy.standard_catalog) >= 5
    assert all(entry.description for entry in policy.standard_catalog)


def test_risk_matrix_is_the_default(policy: Policy) -> None:
    assert policy.risk_matrix == DEFAULT_RISK_MATRIX


def test_upcoming_sections_carry_seed_values(policy: Policy) -> None:
    assert policy.emergency.post_approval.within == timedelta(hours=24)
    assert policy.emergency.post_approval.role == "engineering_manager"
    assert policy.timeline.monitoring == {
        Category.STANDARD: timedelta(minutes=15),
        Category.NORMAL: timedelta(hours=1),
        Category.MAJOR: timedelta(hours=4),
        Category.EMERGENCY: timedelta(minutes=30),
    }
    assert [n.at for n in policy.timeline.notices] == [
        timedelta(hours=-24),
        timedelta(hours=-1),
        timedelta(minutes=-15),
        timedelta(0),
        timedelta(minutes=15),
        timedelta(minutes=30),
    ]
    assert policy.digest.at == "09:00"
    assert (policy.cab.day, policy.cab.at, policy.cab.timezone) == ("wed", "15:00", "UTC")
    assert (policy.targets.success_rate_min, policy.targets.rollback_rate_max) == (95, 3)
    assert policy.targets.failure_rate_max == 5
    assert policy.review.due_within == timedelta(hours=48)


def _commented(lines: list[str], index: int) -> bool:
    """A `#` comment on the line itself or a comment line right above it."""
    if "#" in lines[index]:
        return True
    return index > 0 and lines[index - 1].lstrip().startswith("#")


def test_example_policy_is_documented_line_by_line(policy_text: str) -> None:
    lines = policy_text.splitlines()
    content = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    documented = [i for i in content if _commented(lines, i)]
    assert len(documented) / len(content) >= 0.9, [lines[i] for i in content if i not in documented]

    # Stricter for what changebot reads today: every key line carries its own explanation.
    section = None
    undocumented = []
    for i in content:
        match = KEY_LINE.match(lines[i])
        if match and not match["indent"]:
            section = match["key"]
        if section in READ_TODAY and match and not _commented(lines, i):
            undocumented.append(f"line {i + 1}: {lines[i]}")
    assert not undocumented, undocumented


# ── manifest.yml ────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = YAML(typ="safe").load(MANIFEST_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _urls(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [u for k, v in node.items() for u in ([v] if k in {"url", "request_url"} else _urls(v))]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


def test_manifest_metadata_and_display(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    display = manifest["display_information"]
    assert display["name"] == "changebot"
    assert 0 < len(display["description"]) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", display["background_color"])
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "changebot", "always_online": True}
    assert features["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": False,
    }


def test_manifest_has_the_change_command(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/change"]
    command = commands[0]
    assert command["should_escape"] is True  # mentions arrive as user ids
    assert command["usage_hint"].startswith("new | show CR-")
    assert command["description"]


def test_manifest_interactivity_and_urls(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    urls = _urls(manifest)
    assert len(urls) == 3  # slash command, events, interactivity
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls)
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_manifest_bot_scopes_are_known(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) <= KNOWN_BOT_SCOPES
    assert {"commands", "chat:write", "app_mentions:read"} <= set(scopes)


def test_manifest_shortcuts(manifest: dict[str, Any]) -> None:
    shortcuts = {s["callback_id"]: s for s in manifest["features"]["shortcuts"]}
    assert set(shortcuts) == {"declare_emergency", "new_change"}
    assert (shortcuts["declare_emergency"]["type"], shortcuts["declare_emergency"]["name"]) == (
        "message",
        "Declare emergency change",
    )
    assert (shortcuts["new_change"]["type"], shortcuts["new_change"]["name"]) == (
        "global",
        "New change request",
    )
    for shortcut in shortcuts.values():
        assert len(shortcut["name"]) <= 24
        assert 0 < len(shortcut["description"]) <= 150


def test_manifest_events(manifest: dict[str, Any]) -> None:
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "app_home_opened"} <= events
