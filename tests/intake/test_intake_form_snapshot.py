"""The `/change new` form, snapshotted: the Block Kit it builds must not drift when the
builder changes shape. One view with every optional part (a catalog and a conflict
warning), one with none; each block is one line of JSON below."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from domain.conflicts import Conflict
from domain.policy_loader import parse_policy
from modals.intake import new_change_modal
from tests.support.policy_fixture import TEST_POLICY

NOW = datetime(2024, 3, 5, 14, 27, 11, tzinfo=UTC)

FULL_POLICY = parse_policy(TEST_POLICY, source="test-policy.yml")
PLAIN_POLICY = parse_policy(
    """
timezone: America/New_York
channels:
  changes: CCHANGES
roles:
  tech_lead: [ULEAD1]
  engineering_manager: [UMGR1]
  cto: [UCTO]
services: [web, "db & <cache>"]
approvals:
  by_risk:
    low: []
    medium: [{role: tech_lead, count: 1}]
    high: [{role: tech_lead, count: 1}]
    critical: [{role: cto, count: 1}]
limits:
  title: 80
  text: 1200
""",
    source="plain-policy.yml",
)
CONFLICTS = [
    Conflict(
        change_id="CHG-0007",
        title="Rotate <db> credentials & *restart*",
        services=("api-server", "database"),
        starts_at=datetime(2024, 3, 6, 15, tzinfo=UTC),
        ends_at=datetime(2024, 3, 6, 16, tzinfo=UTC),
    ),
    Conflict(
        change_id="CHG-0009",
        title="Resize the cache",
        services=("redis-cache",),
        starts_at=datetime(2024, 3, 6, 14, 30, tzinfo=UTC),
        ends_at=datetime(2024, 3, 6, 17, tzinfo=UTC),
    ),
]


def _lines(view: dict[str, Any]) -> list[str]:
    """The view as lines of JSON: its frame first, then one line a block."""
    frame = {key: value for key, value in view.items() if key != "blocks"}
    return [json.dumps(frame, sort_keys=True)] + [json.dumps(b, sort_keys=True) for b in view["blocks"]]


FULL_FORM = r"""
{"callback_id": "change_new", "close": {"emoji": true, "text": "Cancel", "type": "plain_text"}, "private_metadata": "{\"acknowledged\":[\"CHG-0007\",\"CHG-0009\"]}", "submit": {"emoji": true, "text": "Submit", "type": "plain_text"}, "title": {"emoji": true, "text": "New change request", "type": "plain_text"}, "type": "modal"}
{"block_id": "conflicts", "text": {"text": ":warning: *This window overlaps open changes on the same or dependent services:*\n\u2022 *CHG-0007* Rotate &lt;db&gt; credentials &amp; *restart* (api-server, database), <!date^1709737200^{date_short_pretty} {time}|Wed 06 Mar 2024 15:00 GMT> \u2192 <!date^1709740800^{date_short_pretty} {time}|Wed 06 Mar 2024 16:00 GMT>\n\u2022 *CHG-0009* Resize the cache (redis-cache), <!date^1709735400^{date_short_pretty} {time}|Wed 06 Mar 2024 14:30 GMT> \u2192 <!date^1709744400^{date_short_pretty} {time}|Wed 06 Mar 2024 17:00 GMT>\nChange the window, or press Submit again to file it anyway.", "type": "mrkdwn"}, "type": "section"}
{"block_id": "title", "element": {"action_id": "title", "max_length": 150, "multiline": false, "placeholder": {"emoji": true, "text": "Upgrade the API gateway to 2.4", "type": "plain_text"}, "type": "plain_text_input"}, "label": {"emoji": true, "text": "Title", "type": "plain_text"}, "optional": false, "type": "input"}
{"block_id": "category", "element": {"action_id": "category", "options": [{"text": {"emoji": true, "text": "Standard: pre-approved procedure", "type": "plain_text"}, "value": "standard"}, {"text": {"emoji": true, "text": "Normal: needs approval", "type": "plain_text"}, "value": "normal"}, {"text": {"emoji": true, "text": "Major: high impact, extensive planning", "type": "plain_text"}, "value": "major"}, {"text": {"emoji": true, "text": "Emergency: restore service now", "type": "plain_text"}, "value": "emergency"}], "placeholder": {"emoji": true, "text": "Choose a category", "type": "plain_text"}, "type": "static_select"}, "label": {"emoji": true, "text": "Category", "type": "plain_text"}, "type": "input"}
{"block_id": "catalog", "element": {"action_id": "catalog", "options": [{"text": {"emoji": true, "text": "Security patch", "type": "plain_text"}, "value": "security-patch"}, {"text": {"emoji": true, "text": "Clear the cache", "type": "plain_text"}, "value": "cache-clear"}], "placeholder": {"emoji": true, "text": "Choose a procedure", "type": "plain_text"}, "type": "static_select"}, "hint": {"emoji": true, "text": "Standard changes only: the catalog entry this change follows.", "type": "plain_text"}, "label": {"emoji": true, "text": "Pre-approved procedure", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "impact", "element": {"action_id": "impact", "options": [{"text": {"emoji": true, "text": "Low: one team notices", "type": "plain_text"}, "value": "low"}, {"text": {"emoji": true, "text": "Medium: some users notice", "type": "plain_text"}, "value": "medium"}, {"text": {"emoji": true, "text": "High: many users or revenue", "type": "plain_text"}, "value": "high"}, {"text": {"emoji": true, "text": "Critical: outage or data loss", "type": "plain_text"}, "value": "critical"}], "placeholder": {"emoji": true, "text": "Choose the impact", "type": "plain_text"}, "type": "static_select"}, "hint": {"emoji": true, "text": "Required except for standard changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Impact if it goes wrong", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "likelihood", "element": {"action_id": "likelihood", "options": [{"text": {"emoji": true, "text": "Low: done this many times", "type": "plain_text"}, "value": "low"}, {"text": {"emoji": true, "text": "Medium: some unknowns", "type": "plain_text"}, "value": "medium"}, {"text": {"emoji": true, "text": "High: new or complex", "type": "plain_text"}, "value": "high"}], "placeholder": {"emoji": true, "text": "Choose the likelihood", "type": "plain_text"}, "type": "static_select"}, "hint": {"emoji": true, "text": "Required except for standard changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Likelihood of problems", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "services", "element": {"action_id": "services", "options": [{"text": {"emoji": true, "text": "api-server", "type": "plain_text"}, "value": "api-server"}, {"text": {"emoji": true, "text": "database", "type": "plain_text"}, "value": "database"}, {"text": {"emoji": true, "text": "redis-cache", "type": "plain_text"}, "value": "redis-cache"}, {"text": {"emoji": true, "text": "kubernetes", "type": "plain_text"}, "value": "kubernetes"}], "placeholder": {"emoji": true, "text": "Pick services", "type": "plain_text"}, "type": "multi_static_select"}, "label": {"emoji": true, "text": "Affected services", "type": "plain_text"}, "type": "input"}
{"block_id": "implementer", "element": {"action_id": "implementer", "placeholder": {"emoji": true, "text": "Pick a person", "type": "plain_text"}, "type": "users_select"}, "hint": {"emoji": true, "text": "Who carries it out and gets the timeline reminders. You, if left empty.", "type": "plain_text"}, "label": {"emoji": true, "text": "Implementer", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "starts_at", "element": {"action_id": "starts_at", "initial_date_time": 1709737200, "type": "datetimepicker"}, "label": {"emoji": true, "text": "Starts", "type": "plain_text"}, "type": "input"}
{"block_id": "ends_at", "element": {"action_id": "ends_at", "initial_date_time": 1709740800, "type": "datetimepicker"}, "label": {"emoji": true, "text": "Ends", "type": "plain_text"}, "type": "input"}
{"type": "divider"}
{"block_id": "description", "element": {"action_id": "description", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Summary and motivation.", "type": "plain_text"}, "label": {"emoji": true, "text": "What will change", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "justification", "element": {"action_id": "justification", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "label": {"emoji": true, "text": "Why now", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "implementation_plan", "element": {"action_id": "implementation_plan", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Required for major changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Implementation plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "dependencies", "element": {"action_id": "dependencies", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Other systems, teams or changes this one needs.", "type": "plain_text"}, "label": {"emoji": true, "text": "Dependencies", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_plan", "element": {"action_id": "rollback_plan", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Required for normal and major changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Rollback plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_duration", "element": {"action_id": "rollback_duration", "is_decimal_allowed": false, "max_value": "10080", "min_value": "0", "type": "number_input"}, "label": {"emoji": true, "text": "Rollback takes (minutes)", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_triggers", "element": {"action_id": "rollback_triggers", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "This change's own triggers, besides the policy's.", "type": "plain_text"}, "label": {"emoji": true, "text": "Roll back if", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "test_plan", "element": {"action_id": "test_plan", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "How you verify it worked.", "type": "plain_text"}, "label": {"emoji": true, "text": "Test plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "success_criteria", "element": {"action_id": "success_criteria", "max_length": 2500, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "How you know it succeeded.", "type": "plain_text"}, "label": {"emoji": true, "text": "Success criteria", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "downtime", "element": {"action_id": "downtime", "is_decimal_allowed": false, "max_value": "10080", "min_value": "0", "type": "number_input"}, "label": {"emoji": true, "text": "Expected downtime (minutes)", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "links", "element": {"action_id": "links", "max_length": 3000, "multiline": true, "placeholder": {"emoji": true, "text": "https://github.com/org/repo/pull/123", "type": "plain_text"}, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "PRs, tickets, runbooks, dashboards: one http(s) link per line, at most 10.", "type": "plain_text"}, "label": {"emoji": true, "text": "Links", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "stakeholders", "element": {"action_id": "stakeholders", "max_selected_items": 20, "placeholder": {"emoji": true, "text": "Pick people", "type": "plain_text"}, "type": "multi_users_select"}, "hint": {"emoji": true, "text": "Told at T-24h and when the change completes.", "type": "plain_text"}, "label": {"emoji": true, "text": "People to notify", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "stakeholder_channels", "element": {"action_id": "stakeholder_channels", "filter": {"exclude_bot_users": true, "include": ["public", "private"]}, "max_selected_items": 20, "placeholder": {"emoji": true, "text": "Pick channels", "type": "plain_text"}, "type": "multi_conversations_select"}, "hint": {"emoji": true, "text": "Told at T-24h and when the change completes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Channels to notify", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "exception", "element": {"action_id": "exception", "options": [{"text": {"emoji": true, "text": "Request an exception (one more approval)", "type": "plain_text"}, "value": "requested"}], "type": "checkboxes"}, "label": {"emoji": true, "text": "Outside the windows or in a blackout?", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "exception_reason", "element": {"action_id": "exception_reason", "max_length": 1000, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Only with an exception request.", "type": "plain_text"}, "label": {"emoji": true, "text": "Why it cannot wait", "type": "plain_text"}, "optional": true, "type": "input"}
{"text": {"text": "Risk is scored from impact \u00d7 likelihood with the policy's matrix; windows and blackouts are checked in Europe/London.", "type": "mrkdwn"}, "type": "section"}
"""

PLAIN_FORM = r"""
{"callback_id": "change_new", "close": {"emoji": true, "text": "Cancel", "type": "plain_text"}, "private_metadata": "{\"acknowledged\":[]}", "submit": {"emoji": true, "text": "Submit", "type": "plain_text"}, "title": {"emoji": true, "text": "New change request", "type": "plain_text"}, "type": "modal"}
{"block_id": "title", "element": {"action_id": "title", "max_length": 80, "multiline": false, "placeholder": {"emoji": true, "text": "Upgrade the API gateway to 2.4", "type": "plain_text"}, "type": "plain_text_input"}, "label": {"emoji": true, "text": "Title", "type": "plain_text"}, "optional": false, "type": "input"}
{"block_id": "category", "element": {"action_id": "category", "options": [{"text": {"emoji": true, "text": "Standard: pre-approved procedure", "type": "plain_text"}, "value": "standard"}, {"text": {"emoji": true, "text": "Normal: needs approval", "type": "plain_text"}, "value": "normal"}, {"text": {"emoji": true, "text": "Major: high impact, extensive planning", "type": "plain_text"}, "value": "major"}, {"text": {"emoji": true, "text": "Emergency: restore service now", "type": "plain_text"}, "value": "emergency"}], "placeholder": {"emoji": true, "text": "Choose a category", "type": "plain_text"}, "type": "static_select"}, "label": {"emoji": true, "text": "Category", "type": "plain_text"}, "type": "input"}
{"block_id": "impact", "element": {"action_id": "impact", "options": [{"text": {"emoji": true, "text": "Low: one team notices", "type": "plain_text"}, "value": "low"}, {"text": {"emoji": true, "text": "Medium: some users notice", "type": "plain_text"}, "value": "medium"}, {"text": {"emoji": true, "text": "High: many users or revenue", "type": "plain_text"}, "value": "high"}, {"text": {"emoji": true, "text": "Critical: outage or data loss", "type": "plain_text"}, "value": "critical"}], "placeholder": {"emoji": true, "text": "Choose the impact", "type": "plain_text"}, "type": "static_select"}, "hint": {"emoji": true, "text": "Required except for standard changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Impact if it goes wrong", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "likelihood", "element": {"action_id": "likelihood", "options": [{"text": {"emoji": true, "text": "Low: done this many times", "type": "plain_text"}, "value": "low"}, {"text": {"emoji": true, "text": "Medium: some unknowns", "type": "plain_text"}, "value": "medium"}, {"text": {"emoji": true, "text": "High: new or complex", "type": "plain_text"}, "value": "high"}], "placeholder": {"emoji": true, "text": "Choose the likelihood", "type": "plain_text"}, "type": "static_select"}, "hint": {"emoji": true, "text": "Required except for standard changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Likelihood of problems", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "services", "element": {"action_id": "services", "options": [{"text": {"emoji": true, "text": "web", "type": "plain_text"}, "value": "web"}, {"text": {"emoji": true, "text": "db & <cache>", "type": "plain_text"}, "value": "db & <cache>"}], "placeholder": {"emoji": true, "text": "Pick services", "type": "plain_text"}, "type": "multi_static_select"}, "label": {"emoji": true, "text": "Affected services", "type": "plain_text"}, "type": "input"}
{"block_id": "implementer", "element": {"action_id": "implementer", "placeholder": {"emoji": true, "text": "Pick a person", "type": "plain_text"}, "type": "users_select"}, "hint": {"emoji": true, "text": "Who carries it out and gets the timeline reminders. You, if left empty.", "type": "plain_text"}, "label": {"emoji": true, "text": "Implementer", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "starts_at", "element": {"action_id": "starts_at", "initial_date_time": 1709737200, "type": "datetimepicker"}, "label": {"emoji": true, "text": "Starts", "type": "plain_text"}, "type": "input"}
{"block_id": "ends_at", "element": {"action_id": "ends_at", "initial_date_time": 1709740800, "type": "datetimepicker"}, "label": {"emoji": true, "text": "Ends", "type": "plain_text"}, "type": "input"}
{"type": "divider"}
{"block_id": "description", "element": {"action_id": "description", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Summary and motivation.", "type": "plain_text"}, "label": {"emoji": true, "text": "What will change", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "justification", "element": {"action_id": "justification", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "label": {"emoji": true, "text": "Why now", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "implementation_plan", "element": {"action_id": "implementation_plan", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Required for major changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Implementation plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "dependencies", "element": {"action_id": "dependencies", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Other systems, teams or changes this one needs.", "type": "plain_text"}, "label": {"emoji": true, "text": "Dependencies", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_plan", "element": {"action_id": "rollback_plan", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Required for normal and major changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Rollback plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_duration", "element": {"action_id": "rollback_duration", "is_decimal_allowed": false, "max_value": "10080", "min_value": "0", "type": "number_input"}, "label": {"emoji": true, "text": "Rollback takes (minutes)", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "rollback_triggers", "element": {"action_id": "rollback_triggers", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "This change's own triggers, besides the policy's.", "type": "plain_text"}, "label": {"emoji": true, "text": "Roll back if", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "test_plan", "element": {"action_id": "test_plan", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "How you verify it worked. Required for normal and major changes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Test plan", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "success_criteria", "element": {"action_id": "success_criteria", "max_length": 1200, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "How you know it succeeded.", "type": "plain_text"}, "label": {"emoji": true, "text": "Success criteria", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "downtime", "element": {"action_id": "downtime", "is_decimal_allowed": false, "max_value": "10080", "min_value": "0", "type": "number_input"}, "label": {"emoji": true, "text": "Expected downtime (minutes)", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "links", "element": {"action_id": "links", "max_length": 3000, "multiline": true, "placeholder": {"emoji": true, "text": "https://github.com/org/repo/pull/123", "type": "plain_text"}, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "PRs, tickets, runbooks, dashboards: one http(s) link per line, at most 10.", "type": "plain_text"}, "label": {"emoji": true, "text": "Links", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "stakeholders", "element": {"action_id": "stakeholders", "max_selected_items": 20, "placeholder": {"emoji": true, "text": "Pick people", "type": "plain_text"}, "type": "multi_users_select"}, "hint": {"emoji": true, "text": "Told at T-24h and when the change completes.", "type": "plain_text"}, "label": {"emoji": true, "text": "People to notify", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "stakeholder_channels", "element": {"action_id": "stakeholder_channels", "filter": {"exclude_bot_users": true, "include": ["public", "private"]}, "max_selected_items": 20, "placeholder": {"emoji": true, "text": "Pick channels", "type": "plain_text"}, "type": "multi_conversations_select"}, "hint": {"emoji": true, "text": "Told at T-24h and when the change completes.", "type": "plain_text"}, "label": {"emoji": true, "text": "Channels to notify", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "exception", "element": {"action_id": "exception", "options": [{"text": {"emoji": true, "text": "Request an exception (one more approval)", "type": "plain_text"}, "value": "requested"}], "type": "checkboxes"}, "label": {"emoji": true, "text": "Outside the windows or in a blackout?", "type": "plain_text"}, "optional": true, "type": "input"}
{"block_id": "exception_reason", "element": {"action_id": "exception_reason", "max_length": 1000, "multiline": true, "type": "plain_text_input"}, "hint": {"emoji": true, "text": "Only with an exception request.", "type": "plain_text"}, "label": {"emoji": true, "text": "Why it cannot wait", "type": "plain_text"}, "optional": true, "type": "input"}
{"text": {"text": "Risk is scored from impact \u00d7 likelihood with the policy's matrix; windows and blackouts are checked in America/New_York.", "type": "mrkdwn"}, "type": "section"}
"""


def test_the_form_with_a_catalog_and_a_conflict_warning_is_unchanged() -> None:
    view = new_change_modal(FULL_POLICY, now=NOW, conflicts=CONFLICTS)
    assert _lines(view) == FULL_FORM.strip().splitlines()


def test_the_blank_form_is_unchanged() -> None:
    view = new_change_modal(PLAIN_POLICY, now=NOW)
    assert _lines(view) == PLAIN_FORM.strip().splitlines()
