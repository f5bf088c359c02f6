"""The GitHub App's deployment protection rule through the real HTTP door: signed
deliveries in, answers out through the HTTPS fake of GitHub, exactly once."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import build_changebot
from domain.deployments import GateStatus
from domain.enums import Status
from domain.errors import ChangeNotFound
from domain.model import AuditAction
from storage.database import session_factory
from storage.gate_requests import SqlGateRequests
from tests.gates.github_support import INSTALLATION, REPO, Deliveries, github_policy, settle, tick
from tests.support.flows import CR, approved
from tests.support.github_fake import TOKEN, GithubFake
from tests.support.harness import Harness


@pytest.fixture
def policy_text(github: GithubFake, tmp_path: Path) -> str:
    return github_policy(github, tmp_path / "github-app.pem")


@pytest.fixture
def deliveries(harness: Harness, github: GithubFake) -> Deliveries:
    return Deliveries(harness, github)


async def gate_rows(harness: Harness) -> list[tuple[str | None, str, str]]:
    store = SqlGateRequests(session_factory(harness.bot.engine))
    return [(row.change_id, row.external_id, row.status) for row in await store.rows()]


def card_texts(harness: Harness) -> list[str]:
    """Every card render (post or update) sent to #changes, as JSON text."""
    calls = harness.slack.calls_to("chat.postMessage") + harness.slack.calls_to("chat.update")
    return [
        json.dumps(c.params.get("blocks"), ensure_ascii=False)
        for c in calls
        if c.params["channel"] == "CCHANGES"
    ]


async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(
    harness: Harness, deliveries: Deliveries, caplog: pytest.LogCaptureFixture
) -> None:
    payload = deliveries.protection_rule(ref="CR-2026-0001")
    bad = await deliveries.send("deployment_protection_rule", payload, secret="not-the-secret")
    body = json.dumps(payload).encode()
    missing = await harness.http.post(
        "/github/webhook", data=body, headers={"X-GitHub-Event": "deployment_protection_rule"}
    )
    assert (bad.status, missing.status) == (401, 401)
    assert await gate_rows(harness) == [] and deliveries.fake.callbacks == []
    assert "deployment_callback_url" not in caplog.text and "CR-2026-0001" not in caplog.text


async def test_malformed_json_after_a_good_signature_is_a_400(
    harness: Harness, deliveries: Deliveries
) -> None:
    assert (await deliveries.send("deployment_protection_rule", b"{not json")).status == 400
    no_deployment = {"action": "requested", "repository": {"full_name": REPO}}
    assert (await deliveries.send("deployment_protection_rule", no_deployment)).status == 400
    assert (await deliveries.send("deployment_protection_rule", b"[1, 2]")).status == 400
    assert await gate_rows(harness) == []


async def test_a_body_over_the_limit_is_a_413(harness: Harness) -> None:
    response = await harness.http.post(
        "/github/webhook", data=b"x" * (1024 * 1024 + 1), headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert response.status == 413


async def test_a_change_named_in_the_ref_waits_then_one_approved_click_answers_it_once(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await harness.file_change()  # medium risk: one tech lead, window in two days
    response = await deliveries.request(ref="release/CR-2026-0001-gateway")
    assert response.status == 202
    assert await gate_rows(harness) == [(CR, "9001:production", "pending")]
    assert github.callbacks == []
    assert any("Waiting at the gate: example-org/api → production since" in t for t in card_texts(harness))

    await harness.click("change_approve", CR, user="ULEAD1")
    await tick(harness)
    assert github.callbacks == []  # approved, but its window opens in two days: still waiting

    change = await harness.change(CR)
    harness.clock.set(change.draft.starts_at - timedelta(minutes=20))  # inside gates.early
    await tick(harness)
    await tick(harness)
    assert github.states() == ["approved"]
    callback = github.callbacks[0]
    assert callback.repository == REPO and callback.run_id == 31337
    assert callback.authorization in (f"token {TOKEN}", f"Bearer {TOKEN}")
    assert callback.body["environment_name"] == "production"
    assert callback.body["comment"].startswith(f"{CR} is approved; its window is open until")
    assert "Card: https://" in callback.body["comment"]  # the card in #changes
    assert github.tokens_issued == [INSTALLATION]
    assert await gate_rows(harness) == [(CR, "9001:production", "approved")]
    assert "Waiting at the gate" not in card_texts(harness)[-1]
    trail = [e for e in (await harness.change(CR)).audit if e.action is AuditAction.GATE_CALLBACK]
    assert [(e.details["state"], e.details["callback"]) for e in trail] == [("approved", "sent")]
    answers = [
        e.details["decision"]
        for e in (await harness.change(CR)).audit
        if e.action is AuditAction.GATE_ANSWERED
    ]
    assert answers == ["wait", "wait", "go"]  # awaiting approval, too early, go: each once


async def test_a_change_named_only_in_the_commit_message_is_found_through_the_api(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await harness.file_change()
    github.commits["9fceb02d0ae598e95dc970b74767f19372d61af8"] = "Gateway timeouts (CR-2026-0001)\n\nbody"
    payload = deliveries.protection_rule(ref="main")
    payload["deployment"]["sha"] = "9fceb02d0ae598e95dc970b74767f19372d61af8"
    assert (await deliveries.send("deployment_protection_rule", payload)).status == 202
    assert await gate_rows(harness) == [(CR, "9001:production", "pending")]

    unknown = deliveries.protection_rule(ref="main", deployment_id=9002, environment="staging")
    unknown["deployment"]["sha"] = "0000000000000000000000000000000000000000"  # GitHub has no such commit
    assert (await deliveries.send("deployment_protection_rule", unknown, delivery="d-2")).status == 202
    await tick(harness)
    assert github.states() == ["rejected"]  # no change named anywhere: refused with guidance
    assert "CR-2026-0042" in github.callbacks[0].body["comment"]


async def test_a_rejected_change_answers_rejected(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await harness.file_change()
    await deliveries.request(ref="main", pull_requests=[{"title": "Gateway 2.4 (CR-2026-0001)"}])
    await harness.click("change_reject", CR, user="ULEAD1")
    meta = harness.slack.calls_to("views.open")[-1].params["view"]["private_metadata"]
    await harness.submit(
        "change_reject_reason",
        {"reason": {"reason": {"type": "plain_text_input", "value": "No rollback tested"}}},
        user="ULEAD1",
        private_metadata=meta,
    )
    await tick(harness)
    assert github.states() == ["rejected"]
    assert "No rollback tested" in github.callbacks[0].body["comment"]
    assert await gate_rows(harness) == [(CR, "9001:production", "rejected")]


async def test_no_change_and_no_mapping_is_rejected_at_once_with_guidance(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await deliveries.request(environment="staging", ref="main")
    assert github.states() == ["rejected"]
    assert "CR-2026-0042" in github.callbacks[0].body["comment"]
    assert await gate_rows(harness) == [(None, "9001:staging", "rejected")]


async def test_a_mapped_deployment_files_the_standard_change_and_is_approved_at_once(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await deliveries.request(ref="v2.4.1")
    assert github.states() == ["approved"]
    change = await harness.change(CR)
    assert (change.status, change.draft.catalog_id, list(change.draft.services)) == (
        Status.APPROVED,
        "security-patch",
        ["api-server"],
    )
    assert change.draft.source is not None
    assert (change.draft.source.kind, change.draft.source.ref) == ("github", "v2.4.1")
    assert change.draft.source.url == f"https://github.com/{REPO}/actions/runs/31337"
    assert change.draft.ends_at - change.draft.starts_at == timedelta(minutes=45)
    posted_to = {c.params["channel"] for c in harness.slack.calls_to("chat.postMessage")}
    assert not [channel for channel in posted_to if channel.startswith("github:")]  # nobody to DM
    card = card_texts(harness)[-1]
    assert "`github:example-org/api`" in card and "<@github:" not in card
    assert await gate_rows(harness) == [(CR, "9001:production", "approved")]


async def test_a_redelivery_is_one_row_and_one_callback(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    payload = deliveries.protection_rule(ref="v2.4.1")
    await deliveries.send("deployment_protection_rule", payload, delivery="same-delivery")
    again = await deliveries.send("deployment_protection_rule", payload, delivery="same-delivery")
    assert again.status == 202
    await deliveries.send(
        "deployment_protection_rule", payload, delivery="another-delivery"
    )  # same deployment
    await tick(harness)
    assert github.states() == ["approved"]
    assert await gate_rows(harness) == [(CR, "9001:production", "approved")]
    with pytest.raises(ChangeNotFound):  # one standard change filed, not two
        await harness.change("CR-2026-0002")


async def test_a_failed_callback_is_retried_later_and_a_4xx_closes_the_row(
    harness: Harness, deliveries: Deliveries, github: GithubFake, caplog: pytest.LogCaptureFixture
) -> None:
    github.fail_with(500)
    with caplog.at_level(logging.WARNING):
        await deliveries.request(ref="v2.4.1")
    assert github.callbacks == [] and await gate_rows(harness) == [(CR, "9001:production", "pending")]
    assert "HTTP 500" in caplog.text
    await tick(harness)
    assert github.callbacks == []  # not before the retry delay
    harness.clock.set(harness.clock.now() + timedelta(seconds=31))
    await tick(harness)
    assert github.states() == ["approved"]

    github.fail_with(422)
    await deliveries.request(deployment_id=9002, run_id=4, environment="staging")
    assert (await gate_rows(harness))[-1] == (None, "9002:staging", GateStatus.CLOSED.value)


async def test_a_restarted_bot_answers_a_pending_request_once(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await approved(harness)  # low risk: approved at once, window in two hours
    await deliveries.request(ref="CR-2026-0001")
    assert github.callbacks == []  # too early
    await harness.bot.stop()
    harness.clock.set((await harness.change(CR)).draft.starts_at)
    restarted = build_changebot(harness.bot.settings, harness.bot.policy, clock=harness.clock)
    await restarted.start(run_scheduler=False)  # catches up on the waiting deployments
    try:
        await settle(harness, restarted)
        await tick(harness, restarted)
        assert github.states() == ["approved"]
    finally:
        await restarted.stop()


async def test_deployment_statuses_move_the_change(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    await deliveries.request(ref="v2.4.1")  # files the standard change, window from now
    assert github.states() == ["approved"]
    started = await deliveries.send("deployment_status", deliveries.deployment_status("in_progress"))
    assert started.status == 202
    assert (await harness.change(CR)).status is Status.IN_PROGRESS
    success = deliveries.deployment_status("success")
    await deliveries.send("deployment_status", success, delivery="status-delivery")
    again = await deliveries.send("deployment_status", success, delivery="status-delivery")
    assert (await again.json())["outcome"] == "duplicate"
    other = await deliveries.send(
        "deployment_status", deliveries.deployment_status("success", deployment_id=1)
    )
    assert (await other.json())["outcome"] == "ignored"  # names no change it knows
    change = await harness.change(CR)
    assert change.status is Status.COMPLETED
    moves = [e for e in change.audit if e.action in (AuditAction.STARTED, AuditAction.COMPLETED)]
    assert [e.actor for e in moves] == [f"github:{REPO}"] * 2


async def test_the_card_shows_the_waiting_deployment_escaped(
    harness: Harness, deliveries: Deliveries
) -> None:
    await harness.file_change()
    await deliveries.request(ref="CR-2026-0001", environment="<!channel> & prod")
    shown = [t for t in card_texts(harness) if "Waiting at the gate" in t]
    assert shown and "&lt;!channel&gt; &amp; prod" in shown[-1] and "<!channel>" not in shown[-1]


async def test_a_callback_url_off_the_api_host_never_gets_the_token(
    harness: Harness, deliveries: Deliveries, github: GithubFake
) -> None:
    payload = deliveries.protection_rule(ref="v2.4.1")
    payload["deployment_callback_url"] = "https://127.0.0.2:1/repos/example-org/api/actions/runs/1/x"
    assert (await deliveries.send("deployment_protection_rule", payload)).status == 202
    assert github.attempts == [] and github.tokens_issued == []
    rows = await gate_rows(harness)
    assert rows == [(CR, "9001:production", GateStatus.CLOSED.value)]
    trail = [e for e in (await harness.change(CR)).audit if e.action is AuditAction.GATE_CALLBACK]
    assert trail[0].details["callback"] == "refused"
