"""Kill -9 the bot with notices pending: after a restart each one is delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import clean_env, free_port, spawn_serve, wait_healthy
from tests.support.slack_requests import (
    SIGNING_SECRET,
    change_form_state,
    interaction_body,
    sign,
    view_submission,
)
from tooling.emulator import SlackEmulator

FAST_TIMELINE = """
timeline:
  short_notice: false
  late_after: 1m
  notices:
    - {id: early, at: -3s, audience: [implementer], text: "early notice"}
    - {id: start, at: 0, audience: [implementer], text: "start notice"}
    - {id: after, at: +2s, audience: [implementer], text: "after notice"}
"""
CHANGES = 6


async def start_bot(tmp_path: Path, port: int, emulator: SlackEmulator) -> asyncio.subprocess.Process:
    log = tmp_path / "bot.log"  # both runs append here; shown if the test fails
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=emulator.base_url
    )
    return await spawn_serve(tmp_path, port, env, stdout=log.open("ab"), own_session=True)


async def test_sigkill_with_notices_pending_loses_and_duplicates_nothing(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    policy = TEST_POLICY.replace("timeline:\n  stakeholders:\n    normal: [CSTAKE]\n", "")
    policy = policy.replace("  rollback_triggers: [Error rate > 5%]\n", "") + FAST_TIMELINE
    (tmp_path / "policy.yml").write_text(policy)
    emulator.delay("chat.postMessage", 0.15)  # widen the window in which a kill lands mid-send
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = await start_bot(tmp_path, port, emulator)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base)
            start = int(time.time()) + 10  # room for six submissions on a busy machine
            for k in range(CHANGES):
                state = change_form_state(
                    title=f"Change {k}",
                    category="normal",
                    impact="low",
                    likelihood="low",
                    services=["api-server"],
                    starts_at=start,
                    ends_at=start + 4,
                    description="d",
                    rollback_plan="r",
                )
                state["implementer"] = {"implementer": {"type": "users_select", "selected_user": f"UIMPL{k}"}}
                metadata = ""
                for _ in range(3):  # the same window on the same service: confirm the overlap warning
                    body = interaction_body(
                        view_submission("change_new", state, user="UREQ", private_metadata=metadata)
                    )
                    headers = {
                        "Content-Type": "application/x-www-form-urlencoded",
                        **sign(body, int(time.time())),
                    }
                    async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
                        assert response.status == 200
                        answer = await response.text()
                    if not answer:
                        break
                    metadata = json.loads(answer)["view"]["private_metadata"]
                else:
                    raise AssertionError("the change was never filed")
            # the early notices go out; kill the bot hard in the middle of the timeline
            assert time.time() < start - 3, "filing the changes took too long for this test's timeline"
            while time.time() < start - 1.5:
                await asyncio.sleep(0.05)
            os.killpg(first.pid, signal.SIGKILL)
            await first.wait()
            killed_at = time.time()
            await asyncio.sleep(max(0.0, start + 0.5 - time.time()))  # down across the T-0 notices
            second = await start_bot(tmp_path, port, emulator)
            try:
                await wait_healthy(http, base)
                deadline = killed_at + 150  # generous for a loaded machine; done far sooner

                def everything_out() -> bool:
                    shown = [m["text"] for m in emulator.messages("CCHANGES")]
                    return (
                        all(len(emulator.messages(f"D_UIMPL{k}")) >= 4 for k in range(CHANGES))
                        and sum(t.startswith("CR-2026-") for t in shown) >= CHANGES
                        and sum(t.startswith("Overrun") for t in shown) >= CHANGES
                    )

                while time.time() < deadline:
                    if everything_out():
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # anything duplicated would show up now
            finally:
                second.send_signal(signal.SIGTERM)
                await asyncio.wait_for(second.wait(), 30)
    finally:
        if first.returncode is None:
            first.kill()
    for k in range(CHANGES):
        texts = [m["text"] + json.dumps(m.get("blocks")) for m in emulator.messages(f"D_UIMPL{k}")]
        kinds = Counter(
            kind
            for t in texts
            for kind in ("early notice", "start notice", "after notice", "Overrun")
            if kind in t
        )
        log_tail = (tmp_path / "bot.log").read_text(errors="replace")[-4000:]
        assert kinds == {"early notice": 1, "start notice": 1, "after notice": 1, "Overrun": 1}, (
            texts,
            log_tail,
        )
    cards = [m for m in emulator.messages("CCHANGES") if m["text"].startswith("CR-2026-")]
    assert sorted(m["text"].split(":")[0] for m in cards) == [
        f"CR-2026-{k:04d}" for k in range(1, CHANGES + 1)
    ]
    overruns = [m for m in emulator.messages("CCHANGES") if m["text"].startswith("Overrun")]
    assert len(overruns) == CHANGES
    filed = emulator.messages("D_UREQ")
    assert len(filed) == CHANGES
