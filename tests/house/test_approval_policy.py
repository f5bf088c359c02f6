"""The policy's approval chase and rule-added steps (`approvals.deadline`,
`approvals.extra_steps`): documented defaults, and every mistake named with its line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.approval_policy import ExtraStep, StepCondition, extra_steps_for
from domain.enums import Category, Risk
from domain.policy import PolicyError, PolicyProblem
from domain.policy_loader import parse_policy
from tests.support.policy_fixture import TEST_POLICY

ANCHOR = "  by_category:\n"


def with_approvals(extra: str) -> str:
    assert TEST_POLICY.count(ANCHOR) == 1
    return TEST_POLICY.replace(ANCHOR, extra + ANCHOR)


def line_of(text: str, needle: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def only_problem(text: str) -> PolicyProblem:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.yml")
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


def test_the_defaults_follow_the_documents() -> None:
    deadline = parse_policy(TEST_POLICY).approvals.deadline
    assert deadline.within(category=Category.NORMAL, risk=Risk.MEDIUM) == timedelta(hours=8)  # 000: same day
    assert deadline.within(category=Category.NORMAL, risk=Risk.HIGH) == timedelta(days=3)  # 000: 2-3 days
    assert deadline.within(category=Category.STANDARD, risk=Risk.HIGH) == timedelta(hours=4)  # 003: 4 h
    assert deadline.within(category=Category.MAJOR, risk=Risk.LOW) == timedelta(days=5)  # 003: 2-5 days
    assert (deadline.remind_at, deadline.escalate_to, deadline.flag_unapproved_start) == (
        0.5,
        "engineering_manager",
        True,
    )
    assert parse_policy(TEST_POLICY).approvals.extra_steps == []


def test_deadlines_are_set_per_risk_and_category() -> None:
    text = with_approvals(
        "  deadline:\n    by_risk: {medium: 2h}\n    by_category: {normal: 1d}\n    remind_at: 0\n"
    )
    deadline = parse_policy(text).approvals.deadline
    assert deadline.within(category=Category.NORMAL, risk=Risk.MEDIUM) == timedelta(days=1)
    assert deadline.within(category=Category.MAJOR, risk=Risk.MEDIUM) == timedelta(hours=2)
    assert deadline.within(category=Category.MAJOR, risk=Risk.HIGH) is None  # not listed: not chased
    assert deadline.remind_at == 0


def test_an_unknown_escalation_role_points_at_its_line() -> None:
    text = with_approvals("  deadline:\n    escalate_to: vp_engineering\n")
    problem = only_problem(text)
    assert problem.path == "approvals.deadline.escalate_to"
    assert problem.line == line_of(text, "escalate_to: vp_engineering")
    assert "unknown role 'vp_engineering'" in problem.message


@pytest.mark.parametrize(
    ("yaml", "path", "needle", "message"),
    [
        ("    remind_at: 1.5\n", "approvals.deadline.remind_at", "remind_at", "less than 1"),
        ("    by_risk: {high: 0}\n", "approvals.deadline", "deadline:", "longer than 0"),
        ("    by_risk: {high: soon}\n", "approvals.deadline.by_risk.high", "{high: soon}", "not a duration"),
        ("    nag: true\n", "approvals.deadline.nag", "nag:", "unknown key"),
    ],
)
def test_a_bad_deadline_setting_points_at_its_line(yaml: str, path: str, needle: str, message: str) -> None:
    text = with_approvals("  deadline:\n" + yaml)
    problem = only_problem(text)
    assert problem.path == path
    assert problem.line == line_of(text, needle)
    assert message in problem.message


@pytest.mark.parametrize(
    ("rule", "path", "needle", "message"),
    [
        (
            "    - when: {services: [database]}\n      role: dba\n",
            "approvals.extra_steps[0].role",
            "role: dba",
            "unknown role 'dba'",
        ),
        (
            "    - when: {services: [mainframe]}\n      role: cto\n",
            "approvals.extra_steps[0].when.services[0]",
            "mainframe",
            "unknown service 'mainframe'",
        ),
        (
            "    - when: {}\n      role: cto\n",
            "approvals.extra_steps[0].when",
            "when: {}",
            "give at least one",
        ),
        (
            "    - when: {tags: [x]}\n      role: cto\n",
            "approvals.extra_steps[0].when.tags",
            "tags",
            "unknown key",
        ),
    ],
)
def test_a_bad_extra_step_points_at_its_line(rule: str, path: str, needle: str, message: str) -> None:
    text = with_approvals("  extra_steps:\n" + rule)
    problem = only_problem(text)
    assert problem.path == path
    assert problem.line == line_of(text, needle)
    assert message in problem.message


def test_rules_match_on_every_key_given_and_ask_a_role_once() -> None:
    rules = [
        ExtraStep(when=StepCondition(services=["database"], risks=[Risk.HIGH]), role="dba"),
        ExtraStep(when=StepCondition(categories=[Category.MAJOR]), role="security"),
        ExtraStep(when=StepCondition(services=["database"]), role="security"),
    ]
    db_high = extra_steps_for(
        rules, services=["api", "database"], category=Category.NORMAL, risk=Risk.HIGH, roles_already=[]
    )
    assert [r.role for r in db_high] == ["dba", "security"]
    db_low = extra_steps_for(
        rules, services=["database"], category=Category.MAJOR, risk=Risk.LOW, roles_already=["security"]
    )
    assert db_low == []
