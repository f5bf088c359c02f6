"""Post-implementation reviews, incidents, the CAB agenda, reports, /metrics and audit export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from domain.enums import Status
from tests.support.flows import (
    CR,
    approved,
    fail,
    rendered,
    review_state,
    to_window,
)
from tests.support.harness import Harness
from tests.support.paths import ROOT


async def test_a_failed_change_asks_for_a_review_that_is_stored_and_linked(harness: Harness) -> None:
    await approved(harness)
    await fail(harness)
    request = [c for c in harness.posts_to("UREQ") if "change_review" in rendered(c)]
    assert request and "post-implementation review" in rendered(request[0])
    await harness.click("change_review", CR, user="UREQ", channel="D_UREQ")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    assert view["callback_id"] == "change_review_submit"
    assert {b.get("block_id") for b in view["blocks"]} >= {
        "result",
        "deviations",
        "issues",
        "went_well",
        "improve",
        "action_items",
    }
    missing = await harness.submit(
        "change_review_submit",
        review_state(issues="x"),
        user="UREQ",
        private_metadata=view["private_metadata"],
    )
    assert "result" in missing["errors"]
    stranger = await harness.submit(
        "change_review_submit",
        review_state(result="Failed", issues="x"),
        user="USTRANGER",
        private_metadata=view["private_metadata"],
    )
    assert "only the implementer" in stranger["errors"]["result"]
    answer = await harness.submit(
        "change_review_submit",
        review_state(
            result="Failed",
            issues="DB timeouts; raised pool size",
            improve="Load test first",
            action_items="<!channel> add a load test (UREQ, Friday)",
        ),
        user="UREQ",
        private_metadata=view["private_metadata"],
    )
    assert answer == {}
    change = await harness.change(CR)
    assert change.review is not None and change.review.done and change.review.submitted_by == "UREQ"
    assert change.review.answers["improve"] == "Load test first"
    assert [e.action.value for e in change.audit][-3:] == ["failed", "review_requested", "review_submitted"]
    shown = json.dumps((await harness.command(f"show {CR}", user="UOTHER"))["blocks"])
    assert "Post-implementation review" in shown and "Load test first" in shown
    assert "&lt;!channel&gt; add a load test" in shown
    again = await harness.submit(
        "change_review_submit",
        review_state(result="Failed"),
        user="UREQ",
        private_metadata=view["private_metadata"],
    )
    assert "already written" in again["errors"]["result"]


async def test_reviews_are_chased_and_escalated_when_overdue(harness: Harness) -> None:
    await approved(harness)
    await fail(harness)
    failed_at = harness.clock.now()
    await harness.advance_to(failed_at + timedelta(hours=36))  # 12 h before the 48 h deadline
    assert "Reminder: the review of" in rendered(harness.posts_to("UREQ")[-1])
    assert not harness.posts_to("UMGR1")
    await harness.advance_to(failed_at + timedelta(hours=48))
    assert "is overdue" in rendered(harness.posts_to("UREQ")[-1])
    assert "is overdue" in rendered(harness.posts_to("UMGR1")[-1])
    assert "review_overdue" in [e.action.value for e in (await harness.change(CR)).audit]
    agenda_overdue = await harness.bot.context.service.cab_agenda()
    assert [c.id for c in agenda_overdue.overdue_reviews] == [CR]


async def test_major_changes_are_reviewed_normal_successes_are_not(harness: Harness) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_complete", CR, user="UREQ")
    assert (await harness.change(CR)).review is None
    await approved(
        harness,
        category="major",
        title="Engine upgrade",
        starts_at=int((harness.clock.now() + timedelta(days=3)).timestamp()),
        ends_at=int((harness.clock.now() + timedelta(days=3, hours=1)).timestamp()),
    )
    await harness.click("change_approve", "CR-2026-0002", user="UMGR1")
    await harness.click("change_approve", "CR-2026-0002", user="UCTO")
    await to_window(harness, "CR-2026-0002")
    await harness.click("change_complete", "CR-2026-0002", user="UREQ")
    review = (await harness.change("CR-2026-0002")).review
    assert review is not None and "major" in review.reason
    assert review.due_at == review.requested_at + timedelta(hours=48)


async def test_a_change_that_caused_an_incident_counts_as_a_failure(harness: Harness) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_complete", CR, user="UREQ")
    answer = await harness.command(f"incident {CR} INC-981", user="UREQ")
    assert "counts as a change failure" in json.dumps(answer["blocks"])
    change = await harness.change(CR)
    assert change.caused_incident == "INC-981" and change.review is not None
    assert [e.action.value for e in change.audit][-2:] == ["incident_linked", "review_requested"]
    card = [c for c in harness.slack.calls_to("chat.update") if c.params["channel"] == "CCHANGES"][-1]
    assert "Caused incident: INC-981" in rendered(card)
    bad = await harness.command("incident CR-2026-0001", user="UOPS")
    assert "Use `/change incident" in json.dumps(bad["blocks"])
    report = await harness.bot.context.service.report(span=_month(harness))
    assert report.metrics.change_failure_rate == 100.0


def _month(harness: Harness) -> Any:
    from domain.calendar import report_range

    return report_range("month", now=harness.clock.now() + timedelta(days=1), zone=harness.bot.policy.zone)


async def test_report_command_posts_the_report_with_its_chart(harness: Harness) -> None:
    await approved(harness)
    await harness.click("change_complete", CR, user="UREQ")
    await approved(harness, title="Second")
    await fail(harness, "CR-2026-0002")
    harness.clock.advance(timedelta(hours=3))
    answer = await harness.command("report month", user="UREQ")
    assert "Change report, November 2026 so far" in json.dumps(answer["blocks"])
    [post] = [c for c in harness.posts_to("CCHANGES") if "Change report" in rendered(c)]
    text = rendered(post)
    assert "Total" in text or "total" in text
    [chart] = harness.slack.files.values()
    assert chart["data"].startswith(b"\x89PNG\r\n\x1a\n") and chart["thread_ts"] == next(
        m["ts"] for m in harness.slack.messages("CCHANGES") if "Change report" in m["text"]
    )
    bogus = await harness.command("report fortnight", user="UREQ")
    assert "Which period?" in json.dumps(bogus["blocks"])


async def test_monthly_report_and_cab_agenda_run_once_at_their_time(harness: Harness) -> None:
    service = harness.bot.context.service
    await approved(harness, impact="critical", likelihood="medium")  # critical risk: waits for the CTO
    harness.clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # Wednesday 15:00 UTC
    assert await service.run_cab_agenda()
    assert not await service.run_cab_agenda()
    await harness.settle()
    [agenda] = [c for c in harness.posts_to("CCHANGES") if "CAB agenda" in rendered(c)]
    assert "Awaiting approval* (1)" in rendered(agenda) and "change_approve" in rendered(agenda)
    harness.clock.set(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    assert not await service.run_cab_agenda()  # Thursday: not a CAB day
    harness.clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert await service.run_monthly_report()
    assert not await service.run_monthly_report()
    await harness.settle()
    assert any("Change report, November 2026" in rendered(c) for c in harness.posts_to("CCHANGES"))
    jobs = {job.id for job in harness.bot.scheduler.get_jobs()}
    assert {"cab_agenda", "monthly_report", "daily_digest"} <= jobs


async def test_metrics_endpoint(harness: Harness) -> None:
    await approved(harness)
    await to_window(harness)
    await harness.click("change_complete", CR, user="UREQ")
    harness.slack.fail_next("chat.postMessage", status=500, times=1)
    await approved(harness, title="Another")
    response = await harness.http.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    assert {
        "changebot_change_total",
        "changebot_outbox_depth",
        "changebot_approval_latency_seconds",
        "changebot_notice_lag_seconds",
        "changebot_slack_api_errors",
    } <= set(families)
    totals = {
        (s.labels["category"], s.labels["status"]): s.value
        for s in families["changebot_change_total"].samples
    }
    assert totals[("normal", "completed")] == 1 and totals[("normal", "approved")] == 1
    errors = families["changebot_slack_api_errors"].samples
    assert any(s.value >= 1 for s in errors)


async def test_audit_export_and_the_audit_table_is_append_only(harness: Harness, tmp_path: Path) -> None:
    from tests.support.processes import clean_env, run

    await approved(harness)
    harness.clock.set((await harness.change(CR)).draft.starts_at)  # no tick: no notice entries
    await harness.click("change_start", CR, user="UREQ")
    env = clean_env(DATABASE_URL=harness.bot.settings.database_url, SLACK_BOT_TOKEN="xoxb-1")
    code, out, err = await run(
        "audit", "export", "--since", "2026-11-01", "--until", "2026-12-01", env=env, cwd=tmp_path
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["action"] for r in rows] == ["submitted", "auto_approved", "started"]
    assert rows[2]["actor"] == "UREQ" and rows[2]["change_id"] == CR
    code, _out, err = await run(
        "audit",
        "export",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--format",
        "json",
        "--out",
        str(tmp_path / "audit.json"),
        env=env,
        cwd=tmp_path,
    )
    assert code == 0 and "exported 3 audit events" in err
    assert [e["action"] for e in json.loads((tmp_path / "audit.json").read_text())][-1] == "started"
    code, _out, err = await run(
        "audit", "export", "--since", "yesterday", "--until", "2026-12-01", env=env, cwd=tmp_path
    )
    assert code == 2 and "not an ISO date" in err
    # No code path updates or deletes audit events.
    pattern = re.compile(r"(update|delete)\(\s*(AuditRow|audit_event)|DELETE FROM audit|UPDATE audit", re.I)
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("bot", "domain", "storage", "handlers", "scheduler")
        for p in (ROOT / folder).rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert offenders == []
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
