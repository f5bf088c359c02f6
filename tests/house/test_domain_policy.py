"""Policy loading: a valid file parses; every broken one names the key path and the line."""

from __future__ import annotations

import pytest

from domain.enums import Category, Impact, Likelihood, Risk
from domain.policy import Policy, PolicyError, PolicyProblem, validate_policy
from domain.policy_loader import parse_policy
from domain.risk import DEFAULT_RISK_MATRIX
from tests.support.policy_fixture import TEST_POLICY

SOURCE = "policy.yml"


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def edit(old: str, new: str, text: str = TEST_POLICY) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems(text: str) -> list[PolicyProblem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source=SOURCE)
    assert info.value.source == SOURCE
    assert info.value.problems
    return info.value.problems


def only_problem(text: str) -> PolicyProblem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- valid


def test_test_policy_parses() -> None:
    policy = parse_policy(TEST_POLICY, source=SOURCE)
    assert isinstance(policy, Policy)
    assert policy.timezone == "Europe/London"
    assert policy.zone.key == "Europe/London"
    assert policy.channels.changes == "CCHANGES"
    assert policy.roles == {
        "tech_lead": ["ULEAD1", "ULEAD2"],
        "engineering_manager": ["SMANAGERS"],
        "cto": ["UCTO"],
    }
    assert policy.services == ["api-server", "database", "redis-cache", "kubernetes"]
    assert policy.risk_matrix == DEFAULT_RISK_MATRIX
    assert [e.id for e in policy.standard_catalog] == ["security-patch", "cache-clear"]
    assert policy.catalog_entry("cache-clear") is not None
    assert policy.catalog_entry("nope") is None
    assert policy.limits.title == 150
    assert policy.limits.text == 2500


def test_steps_for_uses_category_override_else_risk() -> None:
    policy = parse_policy(TEST_POLICY, source=SOURCE)
    # by_category wins whatever the risk
    for risk in Risk:
        assert policy.steps_for(category=Category.STANDARD, risk=risk) == []
        assert [(s.role, s.count) for s in policy.steps_for(category=Category.MAJOR, risk=risk)] == [
            ("engineering_manager", 1),
            ("cto", 1),
        ]
    # no override for normal/emergency: by_risk
    expected = {
        Risk.LOW: [],
        Risk.MEDIUM: [("tech_lead", 1)],
        Risk.HIGH: [("tech_lead", 2), ("engineering_manager", 1)],
        Risk.CRITICAL: [("cto", 1)],
    }
    for category in (Category.NORMAL, Category.EMERGENCY):
        for risk, steps in expected.items():
            assert [(s.role, s.count) for s in policy.steps_for(category=category, risk=risk)] == steps


def test_steps_for_returns_a_copy() -> None:
    policy = parse_policy(TEST_POLICY, source=SOURCE)
    policy.steps_for(category=Category.NORMAL, risk=Risk.HIGH).clear()
    assert len(policy.steps_for(category=Category.NORMAL, risk=Risk.HIGH)) == 2


def test_custom_risk_matrix_is_accepted() -> None:
    worst = {Likelihood.HIGH: "critical"}
    rows = "\n".join(
        f"  {lk.value}: {{low: low, medium: low, high: low, critical: {worst.get(lk, 'low')}}}"
        for lk in Likelihood
    )
    policy = parse_policy(TEST_POLICY + f"risk_matrix:\n{rows}\n", source=SOURCE)
    assert policy.risk_matrix[Likelihood.HIGH][Impact.CRITICAL] is Risk.CRITICAL
    assert policy.risk_matrix[Likelihood.LOW][Impact.CRITICAL] is Risk.LOW


# --------------------------------------------------------------------------- line numbers


def test_bad_timezone() -> None:
    text = edit("timezone: Europe/London", "timezone: Mars/Olympus_Mons")
    problem = only_problem(text)
    assert problem.path == "timezone"
    assert problem.line == line_of(text, "timezone:")
    assert "Mars/Olympus_Mons" in problem.message


def test_unknown_role_in_by_risk_points_at_the_role_key() -> None:
    text = edit(
        "    critical: [{role: cto, count: 1}]\n",
        "    critical:\n      - count: 1\n        role: ceo\n",
    )
    problem = only_problem(text)
    assert problem.path == "approvals.by_risk.critical[0].role"
    assert problem.line == line_of(text, "role: ceo")
    assert "ceo" in problem.message
    assert "tech_lead" in problem.message  # lists the known roles


def test_unknown_role_in_by_category() -> None:
    text = edit(
        "{role: engineering_manager, count: 1}, {role: cto, count: 1}]",
        "{role: engineering_manager, count: 1}, {role: vp, count: 1}]",
    )
    problem = only_problem(text)
    assert problem.path == "approvals.by_category.major[1].role"
    assert problem.line == line_of(text, "role: vp")


def test_count_zero() -> None:
    text = edit("medium: [{role: tech_lead, count: 1}]", "medium:\n      - role: tech_lead\n        count: 0")
    problem = only_problem(text)
    assert problem.path == "approvals.by_risk.medium[0].count"
    assert problem.line == line_of(text, "count: 0")


def test_unknown_top_level_key() -> None:
    text = edit("\nservices: [api", "\napproverz: []\nservices: [api")
    problem = only_problem(text)
    assert problem.path == "approverz"
    assert problem.line == line_of(text, "approverz:")
    assert problem.message == "unknown key"


def test_unknown_nested_key() -> None:
    text = edit("  incidents: CINCIDENTS\n", "  incidents: CINCIDENTS\n  chnages: CX123\n")
    problem = only_problem(text)
    assert problem.path == "channels.chnages"
    assert problem.line == line_of(text, "chnages")


def test_bad_slack_id_in_roles_points_at_the_member() -> None:
    text = edit("  cto: [UCTO]\n", "  cto:\n    - UCTO\n    - '@bob'\n")
    problem = only_problem(text)
    assert problem.path == "roles.cto[1]"
    assert problem.line == line_of(text, "@bob")
    assert "@bob" in problem.message


def test_bad_slack_id_in_flow_list_points_at_the_role() -> None:
    text = edit("tech_lead: [ULEAD1, ULEAD2]", "tech_lead: [ULEAD1, lead2]")
    problem = only_problem(text)
    assert problem.path == "roles.tech_lead[1]"
    assert problem.line == line_of(text, "tech_lead:")


def test_role_without_members() -> None:
    problem = only_problem(edit("  cto: [UCTO]", "  cto: []"))
    assert problem.path == "roles"
    assert "cto" in problem.message


def test_missing_risk_level_in_by_risk() -> None:
    text = edit("    critical: [{role: cto, count: 1}]\n", "")
    problem = only_problem(text)
    assert problem.path == "approvals.by_risk"
    assert problem.line == line_of(text, "by_risk:")
    assert "critical" in problem.message


def test_duplicate_catalog_id() -> None:
    text = edit("  - id: cache-clear", "  - id: security-patch")
    problem = only_problem(text)
    assert problem.path == "standard_catalog[1].id"
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "id: security-patch" in line]
    assert problem.line == lines[1]


def test_catalog_service_not_in_services() -> None:
    text = edit(
        "    services: [api-server, kubernetes]", "    services:\n      - api-server\n      - mainframe"
    )
    problem = only_problem(text)
    assert problem.path == "standard_catalog[0].services[1]"
    assert problem.line == line_of(text, "- mainframe")
    assert "mainframe" in problem.message


def test_several_problems_reported_together() -> None:
    text = edit("timezone: Europe/London", "timezone: Nowhere/Land")
    text = edit("tech_lead, count: 2}", "tech_lead, count: 0}", text)
    text += "extra: 1\n"
    found = problems(text)
    assert {(p.path, p.line) for p in found} == {
        ("timezone", line_of(text, "timezone:")),
        ("approvals.by_risk.high[0].count", line_of(text, "high:")),
        ("extra", line_of(text, "extra:")),
    }


def test_yaml_syntax_error_line() -> None:
    text = edit("  changes: CCHANGES\n", "  changes: CCHANGES: oops\n")
    problem = only_problem(text)
    assert problem.path == "(yaml)"
    assert problem.line == line_of(text, "oops")


def test_yaml_unclosed_flow_list() -> None:
    text = edit("  cto: [UCTO]", "  cto: [UCTO")
    problem = only_problem(text)
    assert problem.path == "(yaml)"
    # the parser notices where the list should have ended: the next key
    assert problem.line == line_of(text, "cto: [UCTO") + 1


def test_yaml_duplicate_key_is_a_problem_not_a_crash() -> None:
    problem = only_problem(TEST_POLICY + "timezone: UTC\n")
    assert problem.path == "(yaml)"
    assert "timezone" in problem.message


@pytest.mark.parametrize("text", ["", "# nothing here\n", "- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_document(text: str) -> None:
    problem = only_problem(text)
    assert problem.path == "(top level)"
    assert problem.line == 1
    assert "mapping" in problem.message


def test_validate_policy_without_line_finder() -> None:
    with pytest.raises(PolicyError) as info:
        validate_policy({"channels": {"changes": "CX1"}}, source="inline")
    paths = {p.path for p in info.value.problems}
    assert {"roles", "services", "approvals"} <= paths
    assert all(p.line is None for p in info.value.problems)


# --------------------------------------------------------------------------- rendering


def test_render_format() -> None:
    text = edit("timezone: Europe/London", "timezone: Mars/Olympus")
    text = edit("count: 2}", "count: 0}", text)
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="deploy/policy.yml")
    rendered = info.value.render()
    lines = rendered.splitlines()
    assert lines[0] == "deploy/policy.yml: invalid policy (2 problem(s))"
    assert lines[1] == (
        f"  deploy/policy.yml:{line_of(text, 'timezone:')}: timezone: "
        "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Berlin)"
    )
    assert lines[2] == (
        f"  deploy/policy.yml:{line_of(text, 'high:')}: approvals.by_risk.high[0].count: "
        "Input should be greater than or equal to 1"
    )
    assert str(info.value) == rendered


def test_render_unknown_line() -> None:
    error = PolicyError("p.yml", [PolicyProblem("services", None, "services are listed twice")])
    assert error.render().splitlines()[1] == "  p.yml:?: services: services are listed twice"
    assert str(PolicyProblem("a.b", 3, "bad")) == "line 3: a.b: bad"


def test_timeline_notice_ids_are_unique_and_not_reserved() -> None:
    twice = TEST_POLICY.replace(
        "timeline:\n",
        "timeline:\n  notices:\n    - {id: a, at: -1h, text: x}\n    - {id: a, at: 0, text: y}\n",
    )
    with pytest.raises(PolicyError, match="used twice"):
        parse_policy(twice)
    reserved = TEST_POLICY.replace(
        "timeline:\n", "timeline:\n  notices:\n    - {id: overrun, at: 0, text: y}\n"
    )
    with pytest.raises(PolicyError, match="reserved"):
        parse_policy(reserved)


def test_the_weekly_report_is_optional_and_its_errors_name_their_line() -> None:
    assert parse_policy(TEST_POLICY).report.weekly is None
    weekly = parse_policy(TEST_POLICY + "report:\n  weekly: {}\n").report.weekly
    assert weekly is not None and (weekly.day, weekly.at, weekly.channel) == ("mon", "09:00", None)
    text = TEST_POLICY + 'report:\n  weekly:\n    day: monday\n    at: "9am"\n    channel: changes\n'
    found = {p.path: p for p in problems(text)}
    assert set(found) == {"report.weekly.day", "report.weekly.at", "report.weekly.channel"}
    assert found["report.weekly.day"].line == line_of(text, "day: monday")
    assert found["report.weekly.at"].line == line_of(text, 'at: "9am"')
    assert "not a Slack channel id" in found["report.weekly.channel"].message
    assert found["report.weekly.channel"].line == line_of(text, "channel: changes")
