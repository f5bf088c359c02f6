"""`changebot api-token` and `changebot gate` as a pipeline runs them, against a running
`changebot serve`: the token shown once, and the gate's exit codes (0 go, 1 stop, 2 wait,
3 cannot ask), `--wait` returning within seconds of the approval clicked in Slack."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import CHANGEBOT, clean_env, free_port, run, spawn_serve, wait_healthy
from tests.support.slack_requests import SIGNING_SECRET, block_action, interaction_body, sign
from tooling.emulator import SlackEmulator


def change(starts_in: timedelta, **overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + starts_in
    return {
        "title": "Deploy api 2.4",
        "category": "normal",
        "impact": "medium",
        "likelihood": "medium",
        "services": ["api-server"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "description": "Release 2.4.",
        "rollback_plan": "Redeploy 2.3.",
        "requester": "UREQ",
        **overrides,
    }


async def gate(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    return await run("gate", *args, env=env, cwd=cwd, timeout=60)


async def test_tokens_and_the_gate_command_against_a_running_bot(
    tmp_path: Path, emulator: SlackEmulator
) -> None:
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=emulator.base_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'changebot.db'}",
    )
    with (tmp_path / "serve.log").open("wb") as log:
        bot = await spawn_serve(tmp_path, port, env, stdout=log)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base)
            token = await token_commands(env, tmp_path)
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(
                f"{base}/api/v1/changes", json=change(timedelta(minutes=10)), headers=headers
            ) as r:
                assert r.status == 201, await r.text()
                first = (await r.json())["id"]
            other = change(timedelta(days=3), services=["database"])
            async with http.post(f"{base}/api/v1/changes", json=other, headers=headers) as r:
                second = (await r.json())["id"]
            pipeline = {**env, "CHANGEBOT_URL": base, "CHANGEBOT_API_TOKEN": token}
            await exit_codes(pipeline, tmp_path, first, port=port)
            await waiting(pipeline, tmp_path, first, second, http=http, base=base)
    finally:
        bot.send_signal(signal.SIGTERM)
        await asyncio.wait_for(bot.wait(), 30)
    serve_log = (tmp_path / "serve.log").read_text()
    assert token not in serve_log and "api: token ci filed" in serve_log


async def token_commands(env: dict[str, str], cwd: Path) -> str:
    """create prints the token once (the last word of the last line); list; revoke."""
    code, out, _ = await run("api-token", "create", "ci", env=env, cwd=cwd)
    assert code == 0, out
    token = out.strip().splitlines()[-1].split()[-1]
    assert token.startswith("cbt_")
    code, _, err = await run("api-token", "create", "ci", env=env, cwd=cwd)
    assert code == 1 and "already exists" in err
    code, _, err = await run("api-token", "create", "no spaces", env=env, cwd=cwd)
    assert code == 1 and "token name" in err
    assert (await run("api-token", "create", "old", env=env, cwd=cwd))[0] == 0
    code, out, _ = await run("api-token", "revoke", "old", env=env, cwd=cwd)
    assert code == 0 and "revoked" in out
    assert (await run("api-token", "revoke", "old", env=env, cwd=cwd))[0] == 1
    code, out, _ = await run("api-token", "list", env=env, cwd=cwd)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NAME", "CREATED", "LAST", "USED", "REVOKED"]
    assert lines[1].startswith("ci ") and lines[1].endswith(" -")
    assert lines[2].startswith("old ") and not lines[2].endswith(" -")
    assert token not in out
    return token


async def exit_codes(env: dict[str, str], cwd: Path, change_id: str, *, port: int) -> None:
    code, out, _ = await gate(change_id, env=env, cwd=cwd)
    assert code == 2 and "waiting for approval" in out and "the change in Slack: https://" in out
    code, out, _ = await gate(change_id, "--service", "database", env=env, cwd=cwd)
    assert code == 1 and "stop: service 'database' is not in" in out
    code, _, err = await gate("CR-2026-9999", env=env, cwd=cwd)
    assert code == 3 and "no such change" in err
    code, _, err = await gate(change_id, "--token", "cbt_" + "x" * 43, env=env, cwd=cwd)
    assert code == 3 and "token" in err
    code, _, err = await gate(change_id, "--service", "s" * 200, env=env, cwd=cwd)
    assert code == 3 and "422" in err
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = await gate(change_id, "--url", dead, "--wait", "--timeout", "1", env=env, cwd=cwd)
    assert code == 3 and "cannot reach" in err
    no_env = {k: v for k, v in env.items() if k != "CHANGEBOT_API_TOKEN"}
    assert (await gate(change_id, env=no_env, cwd=cwd))[0] == 3


async def waiting(
    env: dict[str, str], cwd: Path, first: str, second: str, *, http: aiohttp.ClientSession, base: str
) -> None:
    """--wait: still waiting at the timeout is 2; an approval clicked in Slack is a go within seconds."""
    began = time.monotonic()
    code, out, err = await gate(second, "--wait", "--timeout", "2", env=env, cwd=cwd)
    assert code == 2 and "still waiting" in err and out.count("waiting for approval") == 1
    assert time.monotonic() - began < 10
    waiter = await asyncio.create_subprocess_exec(
        CHANGEBOT,
        "gate",
        first,
        "--wait",
        "--timeout",
        "60",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert waiter.stdout is not None
    line = await asyncio.wait_for(waiter.stdout.readline(), 30)
    assert b"wait" in line
    body = interaction_body(block_action("change_approve", first, user="ULEAD1"))
    signed = sign(body, int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed}
    async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
        assert response.status == 200
    clicked = time.monotonic()
    rest, _ = await asyncio.wait_for(waiter.communicate(), 30)
    assert waiter.returncode == 0, rest
    assert time.monotonic() - clicked < 5
    assert f"{first}: go:" in rest.decode()
