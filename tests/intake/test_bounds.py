"""Dates without bounds: far-off days and months are answered with help (never a 500),
and a change window must start within the policy's horizon and last within its maximum."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.bounds import EARLIEST_DAY, period_problem
from domain.calendar import parse_calendar_range, report_range
from domain.errors import ChangeNotFound
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from tests.support.flows import approved_change
from tests.support.harness import START, Harness
from tests.support.paths import ROOT
from tests.support.policy_fixture import TEST_POLICY
from tests.support.slack_requests import change_form_state

CR = "CR-2026-0001"
YEAR_9999 = int(datetime(9999, 6, 1, tzinfo=UTC).timestamp())
ZONES = [ZoneInfo("UTC"), ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")]


@pytest.mark.parametrize(
    "text", ["calendar 9999-12-31", "calendar 0001-01-01", "calendar 2029-01-01", "calendar 1999-12-31"]
)
async def test_far_calendar_days_are_answered_with_the_range(harness: Harness, text: str) -> None:
    answer = await harness.command(text, user="UREQ")
    help_text = json.dumps(answer["blocks"])
    assert "Which days?" in help_text and "from 2000-01-01 to 2028-11-22" in help_text


async def test_the_last_calendar_day_is_shown(harness: Harness) -> None:
    answer = await harness.command("calendar 2028-11-22", user="UREQ")
    assert "Which days?" not in json.dumps(answer["blocks"])


@pytest.mark.parametrize("period", ["9999-12", "0001-01", "1999-12", "2026-12"])
async def test_far_report_months_are_answered_with_the_range(harness: Harness, period: str) -> None:
    answer = await harness.command(f"report {period}", user="UREQ")
    help_text = json.dumps(answer["blocks"])
    assert "Which period?" in help_text and "from 2000-01 to this month" in help_text
    assert not [c for c in harness.posts_to("CCHANGES") if "Change report" in json.dumps(c.params)]


@pytest.mark.parametrize(
    ("starts", "length", "field", "message"),
    [
        (YEAR_9999, 3600, "starts_at", "within 730 days"),
        (int((START + timedelta(days=731)).timestamp()), 3600, "starts_at", "within 730 days"),
        (int((START + timedelta(days=2)).timestamp()), 100 * 365 * 86400, "ends_at", "at most 30 days"),
        (int((START + timedelta(days=2)).timestamp()), 30 * 86400 + 60, "ends_at", "at most 30 days"),
    ],
)
async def test_a_change_too_far_ahead_or_too_long_is_refused_inline(
    harness: Harness, starts: int, length: int, field: str, message: str
) -> None:
    fields = harness.form(starts_at=starts, ends_at=starts + length)
    answer = await harness.submit("change_new", change_form_state(**fields), user="UREQ")
    assert answer["response_action"] == "errors" and message in json.dumps(answer["errors"])
    with pytest.raises(ChangeNotFound):
        await harness.change(CR)


async def test_the_longest_window_at_the_furthest_start_is_filed(harness: Harness) -> None:
    starts = int((START + timedelta(days=729)).timestamp())
    fields = harness.form(starts_at=starts, ends_at=starts + 30 * 86400)
    assert (await harness.submit("change_new", change_form_state(**fields), user="UREQ")).get(
        "response_action"
    ) != "errors"
    assert (await harness.change(CR)).draft.ends_at - (await harness.change(CR)).draft.starts_at == timedelta(
        days=30
    )


async def test_reschedule_is_bounded_like_the_form(harness: Harness) -> None:
    change = await approved_change(harness)
    await harness.command(f"reschedule {CR}", user="UREQ")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    for starts, ends, field in [
        (YEAR_9999, YEAR_9999 + 600, "starts_at"),
        (starts_ok := int((START + timedelta(days=3)).timestamp()), starts_ok + 100 * 365 * 86400, "ends_at"),
    ]:
        answer = await harness.submit(
            "change_reschedule",
            {
                "starts_at": {"starts_at": {"selected_date_time": starts}},
                "ends_at": {"ends_at": {"selected_date_time": ends}},
            },
            user="UREQ",
            private_metadata=view["private_metadata"],
        )
        assert field in answer["errors"]
    assert (await harness.change(CR)).draft.starts_at == change.draft.starts_at


def test_policy_limits_have_ceilings_and_the_emergency_window_must_fit() -> None:
    policy = parse_policy(TEST_POLICY)
    assert policy.limits.max_ahead == timedelta(days=730)
    assert policy.limits.max_duration == timedelta(days=30)
    tight = parse_policy(TEST_POLICY + "\nlimits:\n  max_ahead: 90d\n  max_duration: 12h\n")
    assert tight.limits.max_ahead == timedelta(days=90)
    with pytest.raises(PolicyError, match="max_ahead"):
        parse_policy(TEST_POLICY + "\nlimits:\n  max_ahead: 36500d\n")
    with pytest.raises(PolicyError, match=r"emergency\.window"):
        parse_policy(TEST_POLICY + "\nlimits:\n  max_duration: 1h\n")


def test_the_example_policy_sets_the_defaults() -> None:
    example = parse_policy((ROOT / "policy.example.yml").read_text())
    assert example.limits.max_ahead == timedelta(days=730)
    assert example.limits.max_duration == timedelta(days=30)


async def test_audit_export_answers_a_bad_period_in_one_line(harness: Harness, tmp_path: Path) -> None:
    from tests.support.processes import clean_env, run

    env = clean_env(DATABASE_URL=harness.bot.settings.database_url, SLACK_BOT_TOKEN="xoxb-1")
    for since, until in [("0001-01-01", "2026-12-01"), ("2026-11-01", "9999-12-31T23:00-05:00")]:
        code, out, err = await run(
            "audit", "export", "--since", since, "--until", until, env=env, cwd=tmp_path
        )
        assert code != 0 and out == ""
        assert "between 2000-01-01 and" in err and "like 2026-11-01" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


# --- plain values --------------------------------------------------------------------
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@given(st.text(max_size=30), st.sampled_from(ZONES))
def test_any_text_as_a_calendar_day_or_report_month_never_raises(text: str, zone: ZoneInfo) -> None:
    parse_calendar_range(text, now=NOW, zone=zone)
    report_range(text, now=NOW, zone=zone)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), st.sampled_from(ZONES))
def test_any_day_from_year_1_to_9999_is_answered(day: date, zone: ZoneInfo) -> None:
    span = parse_calendar_range(day.isoformat(), now=NOW, zone=zone)
    assert (span is None) == (day < EARLIEST_DAY or day > date(2028, 11, 22))
    month = report_range(f"{day:%Y-%m}", now=NOW, zone=zone)
    assert (month is None) == (day.replace(day=1) < EARLIEST_DAY or day.replace(day=1) > date(2026, 11, 1))


@given(st.datetimes(timezones=st.sampled_from([UTC, *ZONES])), st.datetimes(timezones=st.just(UTC)))
def test_any_export_period_is_judged_without_raising(since: datetime, until: datetime) -> None:
    problem = period_problem(since, until, now=NOW)
    assert problem is None or problem.startswith(("the period", "--until"))
