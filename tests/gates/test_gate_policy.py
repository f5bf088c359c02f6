"""The gates and integrations sections of the policy: defaults, the GitHub mappings and
their line-precise errors, and the documented example."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from tests.support.paths import ROOT
from tests.support.policy_fixture import TEST_POLICY

GITHUB = """integrations:
  github:
    app_id: 123456
    private_key_file: /run/secrets/github-app.pem
    mappings:
      - repository: example-org/api
        environment: production
        standard: security-patch
        services: [api-server]
      - repository: example-org/cache
        environment: Staging
        standard: cache-clear
"""


def problems(extra: str) -> list[tuple[str, int | None]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(TEST_POLICY + extra)
    return [(p.path, p.line) for p in caught.value.problems]


def line_of(extra: str, needle: str) -> int:
    return (TEST_POLICY + extra).splitlines().index(needle) + 1


def test_without_the_sections_the_gate_opens_30_minutes_early_and_github_is_off() -> None:
    policy = parse_policy(TEST_POLICY)
    assert policy.gates.early == timedelta(minutes=30)
    assert policy.integrations.github is None


def test_a_github_app_maps_deployments_to_standard_changes() -> None:
    policy = parse_policy(TEST_POLICY + "gates: {early: 45m}\n" + GITHUB)
    assert policy.gates.early == timedelta(minutes=45)
    github = policy.integrations.github
    assert github is not None
    assert (github.app_id, github.private_key_file, github.webhook_secret_env) == (
        123456,
        "/run/secrets/github-app.pem",
        "GITHUB_WEBHOOK_SECRET",
    )
    found = github.mapping_for(repository="Example-Org/API", environment="PRODUCTION")
    assert found is not None and (found.standard, found.services) == ("security-patch", ["api-server"])
    cache = github.mapping_for(repository="example-org/cache", environment="staging")
    assert cache is not None and cache.services == []
    assert github.mapping_for(repository="example-org/api", environment="staging") is None


def test_a_bad_gate_duration_is_reported_on_its_line() -> None:
    extra = "gates:\n  early: soon\n"
    assert problems(extra) == [("gates.early", line_of(extra, "  early: soon"))]
    extra = "gates:\n  early: -5m\n"
    assert problems(extra) == [("gates.early", line_of(extra, "  early: -5m"))]


def test_mapping_errors_name_the_key_and_the_line() -> None:
    extra = """integrations:
  github:
    app_id: 0
    private_key_file: key.pem
    webhook_secret_env: NOT A NAME
    mappings:
      - repository: no-slash
        environment: production
        standard: security-patch
      - repository: example-org/api
        environment: production
        standard: unknown-procedure
      - repository: example-org/api
        environment: Production
        standard: security-patch
        services: [database, nowhere]
"""
    assert problems(extra) == [
        ("integrations.github.app_id", line_of(extra, "    app_id: 0")),
        ("integrations.github.webhook_secret_env", line_of(extra, "    webhook_secret_env: NOT A NAME")),
        ("integrations.github.mappings[0].repository", line_of(extra, "      - repository: no-slash")),
    ]
    fixed = extra.replace("app_id: 0", "app_id: 7").replace("NOT A NAME", "GH_SECRET")
    fixed = fixed.replace("no-slash", "example-org/web")
    with pytest.raises(PolicyError) as caught:
        parse_policy(TEST_POLICY + fixed)
    found = [(p.path, p.line, p.message) for p in caught.value.problems]
    mapped = [p for p in found if p[0].startswith("integrations")]
    assert [(path, line) for path, line, _ in mapped] == [
        ("integrations.github.mappings[1].standard", line_of(fixed, "        standard: unknown-procedure")),
        ("integrations.github.mappings[2].environment", line_of(fixed, "        environment: Production")),
        (
            "integrations.github.mappings[2].services[0]",
            line_of(fixed, "        services: [database, nowhere]"),
        ),
        (
            "integrations.github.mappings[2].services[1]",
            line_of(fixed, "        services: [database, nowhere]"),
        ),
    ]
    assert "unknown standard change 'unknown-procedure'" in mapped[0][2]
    assert "mapped twice" in mapped[1][2]
    assert "pre-approved only for api-server, kubernetes, not 'database'" in mapped[2][2]
    assert "unknown service 'nowhere'" in mapped[3][2]


def test_the_example_policys_github_block_is_valid_once_uncommented() -> None:
    lines = (ROOT / "policy.example.yml").read_text(encoding="utf-8").splitlines()
    start = lines.index("# integrations:")
    end = next(i for i in range(start, len(lines) + 1) if i == len(lines) or not lines[i].startswith("#"))
    enabled = [line for line in lines[:start] if not line.startswith("integrations: {}")]
    enabled += [line.removeprefix("# ") for line in lines[start:end]] + lines[end:]
    github = parse_policy("\n".join(enabled) + "\n").integrations.github
    assert github is not None and github.mappings[0].standard == "patch-version-bump"
    assert github.mappings[0].services == ["api-server"]
