"""The template's further fields as plain values: which links are links, how the card, the
show view, the timeline and the ICS feed render them (hostile text escaped, no forged
link), the policy's `required_fields` and `lead_time` with line-precise errors, and the
lead time inside the schedule check."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.ics import render_ics
from domain.calendar_policy import schedule_problems
from domain.enums import Category, Impact, Likelihood, Risk, Status
from domain.lead_time import lead_in_words, lead_time_floor
from domain.model import AuditAction, AuditEntry, Change, ChangeDraft, StepSnapshot
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from domain.template_fields import REQUIRABLE, RequiredField, stakeholders_of, web_link
from modals.cards import change_card, change_detail
from modals.template_fields import link_md, stakeholder_md
from modals.timeline import notice_message
from tests.support.policy_fixture import RULES_OFF, TEST_POLICY

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
ZONE = parse_policy(TEST_POLICY).zone
HOSTILE = "<!channel> <@U123> <https://evil.example|ZZFORGED> & *b*"
RAW = ("<!channel", "<@U123", "<https://evil", "ZZFORGED>")


def change(**draft_fields: Any) -> Change:
    draft = ChangeDraft(
        title="Upgrade the gateway",
        category=Category.NORMAL,
        impact=Impact.MEDIUM,
        likelihood=Likelihood.MEDIUM,
        services=("api-server",),
        starts_at=NOW + timedelta(days=2),
        ends_at=NOW + timedelta(days=2, hours=1),
        description="Gateway 2.4",
        rollback_plan="Redeploy 2.3",
        **draft_fields,
    )
    return Change(
        id="CR-2026-0001",
        draft=draft,
        risk=Risk.MEDIUM,
        status=Status.APPROVED,
        requester="UREQ",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        steps=(StepSnapshot("tech_lead", 1, ("ULEAD1",)),),
    )


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/api/pull/7",
        "http://grafana.internal:3000/d/abc?from=now-1h&to=now",
        "HTTPS://Tickets.Example/CHG-1#comment-2",
    ],
)
def test_web_addresses_are_links(url: str) -> None:
    assert web_link(url)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "https://evil.example|ZZFORGED",
        "<https://evil.example>",
        "https://a.example/x y",
        'https://a.example/"quoted"',
        "https://a.example/\\back",
        "ftp://files.example",
        "https://",
        "https:///path",
        "https://host:port/",
        "https://ünïcode.example",
        "https://a.example/\n<!channel>",
        "https://x.example/" + "a" * 500,
        "mailto:someone@example.com",
    ],
)
def test_anything_else_is_not(url: str) -> None:
    assert not web_link(url)


@given(st.text(max_size=80))
def test_whatever_passes_as_a_link_cannot_break_out_of_slack_link_syntax(url: str) -> None:
    rendered = link_md(url)
    if web_link(url):
        assert rendered.startswith("<http") and rendered.count("<") == 1 and rendered.count("|") == 1
    else:
        assert "<" not in rendered and ">" not in rendered


def test_a_link_is_labelled_with_its_own_address_and_its_ampersands_escaped() -> None:
    assert (
        link_md("https://x.example/a?b=1&c=2") == "<https://x.example/a?b=1&amp;c=2|x.example/a?b=1&amp;c=2>"
    )
    assert link_md("https://evil.example|ZZFORGED") == "https://evil.example|ZZFORGED"
    assert link_md("<!channel>") == "&lt;!channel&gt;"


def test_stakeholders_are_mentions_or_channel_links_and_anything_else_is_text() -> None:
    assert stakeholder_md("UPRODUCT") == "<@UPRODUCT>"
    assert stakeholder_md("CSUPPORT") == "<#CSUPPORT>"
    assert stakeholder_md("<!channel>") == "&lt;!channel&gt;"


def test_stakeholders_are_the_category_channels_then_the_changes_own_each_once() -> None:
    draft = change(stakeholders=("UPRODUCT", "CSTAKE")).draft
    assert stakeholders_of({Category.NORMAL: ["CSTAKE", "CALL"]}, draft) == ["CSTAKE", "CALL", "UPRODUCT"]
    assert stakeholders_of({}, change().draft) == []


# --------------------------------------------------------------------------- views


def test_the_card_shows_links_stakeholders_and_the_rollback_with_hostile_text_escaped() -> None:
    shown = change(
        links=("https://github.com/org/api/pull/7", "https://evil.example|ZZFORGED"),
        stakeholders=("UPRODUCT", "CSUPPORT"),
        rollback_minutes=15,
        rollback_triggers=HOSTILE,
        success_criteria=HOSTILE,
    )

    card = texts(change_card(shown, zone=ZONE))

    assert "<https://github.com/org/api/pull/7|github.com/org/api/pull/7>" in card
    assert "https://evil.example|ZZFORGED" in card and "<https://evil.example|ZZFORGED>" not in card
    assert "<@UPRODUCT>, <#CSUPPORT> (at T-24h and on completion)" in card
    assert "Rolling back takes about 15 min." in card
    assert "*Roll back if* &lt;!channel&gt; &lt;@U123&gt;" in card
    assert not any(raw in card for raw in RAW)
    assert "Success criteria" not in card  # the card stays short: `/change show` has it


def test_the_card_without_the_new_fields_is_as_before() -> None:
    card = change_card(change(), zone=ZONE)
    rollback = [b for b in card if "Rollback plan" in json.dumps(b)]
    assert rollback[0]["text"]["text"] == "*Rollback plan*\nRedeploy 2.3"
    assert "Links" not in texts(card) and "Notify" not in texts(card)


def test_change_show_adds_success_criteria_and_dependencies() -> None:
    detail = texts(
        change_detail(change(success_criteria=HOSTILE, dependencies="CR-2026-0007 first"), zone=ZONE)
    )
    assert "*Success criteria*\\n&lt;!channel&gt;" in detail
    assert "*Dependencies*\\nCR-2026-0007 first" in detail
    assert not any(raw in detail for raw in RAW)


def test_a_short_notice_exception_is_named_on_the_card() -> None:
    entry = AuditEntry(
        "UREQ",
        AuditAction.EXCEPTION_REQUESTED,
        NOW,
        {"reason": HOSTILE, "short_notice": "Normal changes are filed at least 24 hours before they start."},
    )
    card = texts(change_card(replace(change(), audit=(entry,)), zone=ZONE))
    assert ":warning: Short notice: Normal changes are filed at least 24 hours before they start." in card
    assert "Exception requested: &lt;!channel&gt;" in card


def test_the_timeline_names_the_changes_own_rollback_triggers_next_to_the_policys() -> None:
    policy = parse_policy(TEST_POLICY)
    _, blocks = notice_message(
        change(rollback_triggers=f"Checkout errors\n{HOSTILE}"),
        key="t_0",
        late=False,
        due_at=NOW,
        policy=policy,
        actions=False,
    )
    assert "Roll back if: Error rate &gt; 5%; Checkout errors &lt;!channel&gt;" in blocks[0]["text"]["text"]
    _, plain = notice_message(change(), key="t_0", late=False, due_at=NOW, policy=policy, actions=False)
    assert plain[0]["text"]["text"].endswith("Roll back if: Error rate &gt; 5%.")


def test_the_ics_feed_lists_the_links_in_the_description_and_as_attachments() -> None:
    shown = change(links=("https://github.com/org/api/pull/7", "https://evil.example|ZZFORGED"))
    body = render_ics(
        changes=[shown], blackouts=[], freezes=[], now=NOW, changes_channel="CCHANGES", until=NOW
    )
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(event["description"]).endswith("Links:\nhttps://github.com/org/api/pull/7")
    assert str(event["attach"]) == "https://github.com/org/api/pull/7"
    assert str(event["url"]) == "https://slack.com/app_redirect?channel=CCHANGES"


# --------------------------------------------------------------------------- policy


def test_the_documents_defaults_and_what_a_policy_may_require() -> None:
    policy = parse_policy(TEST_POLICY.replace(RULES_OFF, ""))
    assert policy.required_fields == {Category.NORMAL: ["test_plan"], Category.MAJOR: ["test_plan"]}
    assert policy.lead_time == {Category.NORMAL: timedelta(hours=24), Category.MAJOR: timedelta(days=7)}
    assert set(REQUIRABLE) == set(get_args(RequiredField))
    off = parse_policy(TEST_POLICY)
    assert (off.required_fields, off.lead_time) == ({}, {})


def test_policy_errors_name_the_key_and_its_line() -> None:
    text = TEST_POLICY.replace(RULES_OFF, "") + (
        "required_fields:\n  normal: [test_plan, colour]\nlead_time:\n  emergency: 1h\n  major: 900d\n  normal: soon\n"
    )
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    lines = text.splitlines()
    found = {(p.path, p.line) for p in info.value.problems}
    assert ("required_fields.normal[1]", lines.index("  normal: [test_plan, colour]") + 1) in found
    assert ("lead_time.normal", lines.index("  normal: soon") + 1) in found
    assert "is not a duration" in str(info.value)

    text = TEST_POLICY.replace(RULES_OFF, "") + "lead_time:\n  emergency: 1h\n  major: 900d\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    lines = text.splitlines()
    assert {(p.path, p.line, p.message) for p in info.value.problems} == {
        ("lead_time.emergency", lines.index("  emergency: 1h") + 1, "emergency changes have no lead time"),
        ("lead_time.major", lines.index("  major: 900d") + 1, "must be from 0 to less than limits.max_ahead"),
    }


def test_lead_times_read_as_people_say_them() -> None:
    assert [
        lead_in_words(timedelta(**k)) for k in ({"hours": 24}, {"days": 7}, {"hours": 1}, {"minutes": 90})
    ] == [
        "24 hours",
        "7 days",
        "1 hour",
        "90 minutes",
    ]


def test_the_lead_time_joins_the_window_problems_and_moves_the_next_allowed_start() -> None:
    policy = parse_policy(
        TEST_POLICY.replace(RULES_OFF, "")
        + 'windows:\n  normal:\n    - {days: [tue, wed, thu], start: "10:00", end: "16:00"}\n'
    )
    monday = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    lead = lead_time_floor(policy.lead_time, category=Category.NORMAL, now=monday)
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday noon: outside the window and too soon

    found = schedule_problems(
        windows=policy.windows,
        blackouts=[],
        freezes=[],
        category=Category.NORMAL,
        start=start,
        end=start + timedelta(hours=1),
        zone=policy.zone,
        lead=lead,
    )

    assert found["starts_at"].startswith(
        "Normal changes run Tue/Wed/Thu 10:00-16:00. Normal changes are filed at least 24 hours before they start."
    )
    assert "Next allowed start: Tue 24 Nov 2026 10:00 GMT." in found["starts_at"]
    assert lead_time_floor(policy.lead_time, category=Category.EMERGENCY, now=monday) is None
    assert lead_time_floor(policy.lead_time, category=Category.STANDARD, now=monday) is None
