"""The `changebot` console script: start-up errors, `serve` end to end, `changes show --json`."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
from pathlib import Path

import aiohttp

from bot.app import build_changebot, migrate
from bot.settings import Settings
from domain.clock import FakeClock
from domain.policy_loader import parse_policy
from storage.migrate import HEAD_REVISION
from tests.support.harness import Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import CHANGEBOT, clean_env, free_port, run, spawn_serve
from tests.support.slack_requests import SIGNING_SECRET, command_body, sign
from tooling.emulator import SlackEmulator


async def test_missing_setting_stops_startup_with_one_line(tmp_path: Path) -> None:
    code, _out, err = await run("serve", env=clean_env(), cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "changebot cannot start: set SLACK_BOT_TOKEN (in the environment or .env)"
    ]
    code, _out, err = await run("serve", env=clean_env(SLACK_BOT_TOKEN="xoxb-1"), cwd=tmp_path)
    assert code == 2 and "SLACK_SIGNING_SECRET" in err and len(err.strip().splitlines()) == 1
    code, _out, err = await run("socket", env=clean_env(SLACK_BOT_TOKEN="xoxb-1"), cwd=tmp_path)
    assert code == 2 and "SLACK_APP_TOKEN" in err and len(err.strip().splitlines()) == 1


async def test_settings_come_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1\nSLACK_SIGNING_SECRET=s\n")
    code, _out, err = await run("serve", env=clean_env(), cwd=tmp_path)
    assert code == 2 and "no policy file at policy.yml" in err


async def test_bad_policy_names_key_and_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(
        TEST_POLICY.replace("count: 2", "count: 0").replace(
            "timezone: Europe/London", "timezone: Mars/Olympus"
        )
    )
    env = clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    code, _out, err = await run("serve", env=env, cwd=tmp_path)
    assert code == 2
    assert "policy.yml:2: timezone: unknown time zone 'Mars/Olympus'" in err
    assert "policy.yml:15: approvals.by_risk.high[0].count:" in err
    code, _out, _err = await run("policy", "check", env=env, cwd=tmp_path)
    assert code == 2


async def test_serve_end_to_end(tmp_path: Path, emulator: SlackEmulator) -> None:
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    port = free_port()
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=emulator.base_url
    )
    process = await spawn_serve(tmp_path, port, env, stdout=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            assert (await response.json()) == {
                                "ok": True,
                                "database": True,
                                "scheduler": True,
                            }
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("changebot serve never became healthy")
            body = command_body("new", user="UREQ")
            import time

            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, int(time.time()))}
            async with http.post(f"{base}/slack/events", data=body, headers=headers) as response:
                assert response.status == 200
            await emulator.wait_for("views.open", timeout=10)
            async with http.post(
                f"{base}/slack/events",
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ) as response:
                assert response.status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()
    assert (tmp_path / "changebot.db").exists()


async def test_changes_show_json(harness: Harness, tmp_path: Path) -> None:
    await harness.file_change()
    await harness.click("change_approve", "CR-2026-0001", user="ULEAD1")
    env = clean_env(DATABASE_URL=harness.bot.settings.database_url, SLACK_BOT_TOKEN="xoxb-1")
    code, out, err = await run("changes", "show", "CR-2026-0001", "--json", env=env, cwd=tmp_path)
    assert code == 0, err
    data = json.loads(out)
    assert data["id"] == "CR-2026-0001"
    assert data["status"] == "approved"
    assert data["category"] == "normal"
    assert data["risk"] == "medium"
    assert data["approvals"] == [
        {
            "user": "ULEAD1",
            "decision": "approve",
            "at": "2026-11-23T07:00:00+00:00",
            "step": 0,
            "role": "tech_lead",
            "reason": "",
        }
    ]
    assert [event["action"] for event in data["audit"]] == ["submitted", "approval_recorded", "approved"]
    assert data["audit"][1]["actor"] == "ULEAD1"
    code, out, err = await run("changes", "show", "CR-2026-0404", env=env, cwd=tmp_path)
    assert code == 1 and "no such change" in err


async def test_healthz_reports_a_stopped_scheduler(harness: Harness) -> None:
    response = await harness.http.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"ok": False, "database": True, "scheduler": False}
    harness.bot.scheduler.start()
    response = await harness.http.get("/healthz")
    assert response.status == 200


async def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", SLACK_BOT_TOKEN="xoxb-1")
    for _ in range(2):
        code, out, err = await run("db", "upgrade", env=env, cwd=tmp_path)
        assert code == 0, err
        assert "database schema is current" in out


async def test_commands_on_a_database_not_upgraded_say_what_to_run(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", SLACK_BOT_TOKEN="xoxb-1")
    for command in (("audit", "verify"), ("changes", "show", "CR-2026-0001"), ("api-token", "list")):
        code, out, err = await run(*command, env=env, cwd=tmp_path)
        assert code == 2, (command, out, err)
        assert "Traceback" not in err
        assert err.strip().splitlines() == [
            "the database schema is at nothing yet, this changebot needs "
            f"{HEAD_REVISION}: run `changebot db upgrade` first"
        ]


async def test_socket_mode_end_to_end(tmp_path: Path, emulator: SlackEmulator) -> None:
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    env = clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=emulator.base_url)
    process = await asyncio.create_subprocess_exec(
        CHANGEBOT,
        "socket",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        command = {
            "command": "/change",
            "text": "help",
            "user_id": "UREQ",
            "team_id": "T0001",
            "channel_id": "CCHANGES",
            "trigger_id": "trig-9",
            "api_app_id": "A0001",
        }
        ack = await emulator.socket_send("slash_commands", command, timeout=30)
        assert "/change new" in json.dumps(ack.get("payload"))
        await emulator.socket_send("slash_commands", {**command, "text": "new"})
        opened = await emulator.wait_for("views.open", timeout=10)
        assert opened[0].params["trigger_id"] == "trig-9"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()


async def test_without_auto_migration_serve_refuses_an_old_schema(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        CHANGEBOT_AUTO_MIGRATE="false",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
    )
    code, _out, err = await run("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert code == 2
    assert "the database schema is at nothing" in err and "run `changebot db upgrade`" in err
    code, out, _err = await run("db", "upgrade", env=env, cwd=tmp_path)
    assert code == 0 and "current" in out


async def test_the_collector_runs_again_once_the_bot_has_started(
    tmp_path: Path, emulator: SlackEmulator, clock: FakeClock
) -> None:
    """`changebot serve` imports and builds with the garbage collector off; start() turns it on."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gc.db'}"
    settings = Settings(slack_bot_token="xoxb-1", slack_api_url=emulator.base_url, database_url=url)
    await migrate(settings)
    gc.disable()
    try:
        bot = build_changebot(settings, parse_policy(TEST_POLICY), clock=clock)
        await bot.start(run_scheduler=False)
        assert gc.isenabled()
        await bot.stop()
    finally:
        gc.enable()
