"""Logs: LOG_LEVEL and LOG_FORMAT are honoured, and an idle bot writes nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.logs import JsonFormatter
from tests.support.flows import (
    approved,
    declare,
    fail,
    review_state,
)
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import clean_env, free_port, run, spawn_serve
from tests.support.slack_requests import SIGNING_SECRET
from tooling.emulator import SlackEmulator

IDLE_SECONDS = 3.0  # six scheduler ticks: 12 APScheduler INFO lines before logs were quiet


def log_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if not k.startswith("LOG_")}
    env.update(extra)
    return env


async def serve_idle(tmp_path: Path, emulator: SlackEmulator, **env: str) -> list[str]:
    """Run `changebot serve` until healthy, leave it idle a while, stop it; its output lines."""
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    port = free_port()
    full_env = log_env(
        SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=emulator.base_url, **env
    )
    process = await spawn_serve(tmp_path, port, full_env, stdout=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("changebot serve never became healthy")
        await asyncio.sleep(IDLE_SECONDS)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()
    return output.decode().splitlines()


async def test_an_idle_bot_writes_nothing_after_start_up_and_json_lines_parse(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    lines = await serve_idle(tmp_path, emulator, LOG_FORMAT="json")
    entries = [json.loads(line) for line in lines]
    assert all(set(e) == {"time", "level", "logger", "message"} for e in entries), lines
    messages = [e["message"] for e in entries]
    [listening] = [i for i, m in enumerate(messages) if m.startswith("changebot listening on")]
    assert entries[listening]["level"] == "INFO" and entries[listening]["logger"] == "changebot"
    assert entries[listening]["time"].endswith("+00:00")
    assert messages[listening + 1 :] == []  # idle, then a clean stop: not a line
    assert not any("Running job" in m or "executed successfully" in m for m in messages)


async def test_log_level_is_honoured(tmp_path: Path, emulator: SlackEmulator) -> None:
    assert await serve_idle(tmp_path, emulator, LOG_LEVEL="warning", LOG_FORMAT="text") == []


async def test_a_bad_log_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    code, _out, err = await run("policy", "check", env=log_env(LOG_LEVEL="LOUD"), cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "changebot cannot start: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (not 'LOUD')"
    ]
    code, _out, err = await run("policy", "check", env=log_env(LOG_FORMAT="xml"), cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "LOG_FORMAT must be one of text, json" in err
    code, out, _err = await run("policy", "check", env=log_env(LOG_LEVEL="debug"), cwd=tmp_path)
    assert code == 0 and "policy is valid" in out


def test_json_lines_carry_the_exception_text() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "changebot", logging.ERROR, __file__, 1, "failed %s", ("CR-1",), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed CR-1" and entry["level"] == "ERROR"
    assert "ValueError: boom" in entry["exception"] and "Traceback" in entry["exception"]


async def test_each_meaningful_event_is_one_info_line_with_the_cr_id_and_no_user_text(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "Quietly rotate the PAYROLL keys"
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=2, times=1)
    await harness.file_change(title=secret, description=secret, rollback_plan=secret)
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD2")  # refused: no line, audited
    starts_at = (await harness.change("CR-2026-0001")).draft.starts_at
    harness.slack.fail_next("chat.postMessage", status=200, error="channel_not_found", times=1)
    await harness.advance_to(starts_at - timedelta(hours=1))
    await harness.advance_to(starts_at - timedelta(minutes=10))  # a start is held to its window
    await harness.click("change_start", "CR-2026-0001", user="UREQ")
    lines = [(r.levelname, r.name, r.getMessage()) for r in caplog.records if r.name.startswith("changebot")]
    lines += [(r.levelname, r.name, r.getMessage()) for r in caplog.records if r.name == "bot.outbox"]
    assert all(secret not in message and "PAYROLL" not in message for _, _, message in lines), lines
    messages = [message for _, _, message in lines]
    assert "CR-2026-0001 filed by UREQ: normal, medium risk, pending_approval" in messages
    assert "CR-2026-0001 approval_recorded, approved by ULEAD1: pending_approval -> approved" in messages
    assert not any("ULEAD2" in m for m in messages)
    assert "CR-2026-0001 notice t_minus_24h sent late" in messages  # the clock jumped over it
    assert "CR-2026-0001 notice t_minus_1h sent" in messages
    assert "CR-2026-0001 started by UREQ: approved -> in_progress" in messages
    assert any(" for CR-2026-0001: retry in 2.0s (429 ratelimited)" in m for m in messages), messages
    assert any(" for CR-2026-0001 undeliverable: 200 channel_not_found" in m for m in messages), messages


async def test_freezes_reviews_and_on_call_are_one_info_line_each_with_ids_and_no_user_text(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "PAYROLL quarter close"
    await harness.command(f"freeze start {secret}", user="UCTO")
    await harness.command("freeze end", user="UCTO")
    await approved(harness)
    await fail(harness)
    await harness.click("change_review", "CR-2026-0001", user="UREQ", channel="D_UREQ")
    view = harness.slack.calls_to("views.open")[-1].params["view"]
    answers = review_state(result="Failed", issues=secret, improve=secret)
    assert (
        await harness.submit(
            "change_review_submit", answers, user="UREQ", private_metadata=view["private_metadata"]
        )
        == {}
    )
    assert await declare(harness, title=secret, broken=secret) == {}  # CR-2026-0002, to the fallback on call
    messages = [r.getMessage() for r in caplog.records if r.name == "changebot.events"]
    assert all("PAYROLL" not in m for m in messages), messages
    assert "freeze 1 started by UCTO" in messages and "freeze 1 ended by UCTO" in messages
    assert "CR-2026-0001 review written by UREQ" in messages
    assert "CR-2026-0002 on call: UFALLBACK (fallback)" in messages
