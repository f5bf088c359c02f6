"""Trust in the audit trail and the CLI: hash chains and `audit verify`, the PostgreSQL
append-only trigger, refused clicks that cannot flood a trail, the hashed ICS feed token,
database-only commands without Slack settings, and `--out` files written safely."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import tempfile
from asyncio.subprocess import PIPE
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_changebot
from bot.settings import Settings
from domain.clock import FakeClock
from domain.model import AuditAction, AuditEntry
from domain.policy_loader import parse_policy
from storage.audit_chain import ChainReport, verify_chains
from storage.database import create_engine, session_factory
from storage.migrate import alembic_config, upgrade
from storage.repository import SqlChangeRepository
from tests.support.harness import START, Db, Harness
from tests.support.policy_fixture import TEST_POLICY
from tests.support.processes import CHANGEBOT, clean_env, run
from tests.support.slack_requests import SIGNING_SECRET, change_form_state
from tooling.emulator import SlackEmulator

CR = "CR-2026-0001"


def db_env(harness: Harness, tmp_path: Path) -> dict[str, str]:
    """Only the database and the policy: no Slack setting at all."""
    (tmp_path / "policy.yml").write_text(TEST_POLICY)
    return clean_env(
        DATABASE_URL=harness.bot.settings.database_url, CHANGEBOT_POLICY=str(tmp_path / "policy.yml")
    )


async def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(sa.text(statement))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def lifecycle(harness: Harness) -> None:
    """File, approve, a bystander's refused click, start, complete; a digest (no CR)."""
    start = int((harness.clock.now() + timedelta(hours=2)).timestamp())
    form = harness.form(starts_at=start, ends_at=start + 3600)
    assert await harness.submit("change_new", change_form_state(**form), user="UREQ") == {}
    await harness.click("change_approve", CR, user="UNOBODY")
    await harness.click("change_approve", CR, user="ULEAD1")
    await harness.click("change_start", CR, user="UREQ")
    await harness.click("change_complete", CR, user="UREQ")
    harness.clock.advance(timedelta(hours=3))
    await harness.bot.context.service.run_digest()
    await harness.settle()


async def test_verify_passes_after_a_lifecycle_and_the_export_carries_the_hashes(
    harness: Harness, tmp_path: Path
) -> None:
    await lifecycle(harness)
    env = db_env(harness, tmp_path)
    code, out, err = await run("audit", "verify", env=env, cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("audit trail intact:") and "on 2 chains" in out
    code, out, err = await run(
        "audit",
        "export",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-31",
        "--format",
        "json",
        env=env,
        cwd=tmp_path,
    )
    assert code == 0, err
    events = json.loads(out)
    trail = [e for e in events if e["change_id"] == CR]
    assert [e["action"] for e in trail][:3] == ["submitted", "decision_refused", "approval_recorded"]
    assert all(len(e["hash"]) == 64 for e in events)
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in itertools.pairwise(trail))


async def test_tampering_is_named_by_verify_or_refused_by_postgresql(
    harness: Harness, tmp_path: Path
) -> None:
    await lifecycle(harness)
    env = db_env(harness, tmp_path)
    url = harness.bot.settings.database_url
    [(second,)] = await sql(
        url, f"SELECT id FROM audit_event WHERE change_id = '{CR}' ORDER BY id LIMIT 1 OFFSET 1"
    )
    if url.startswith("postgresql"):
        for statement in (
            f"UPDATE audit_event SET actor = 'UMALLORY' WHERE id = {second}",
            f"DELETE FROM audit_event WHERE id = {second}",
            "TRUNCATE audit_event",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                await sql(url, statement)
        code, out, err = await run("audit", "verify", env=env, cwd=tmp_path)
        assert code == 0 and "intact" in out, err
        return
    await sql(url, f"UPDATE audit_event SET actor = 'UMALLORY' WHERE id = {second}")
    code, out, err = await run("audit", "verify", env=env, cwd=tmp_path)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"audit entry {second} ({CR}) is broken: "
        "its content does not match its hash (it was changed after it was written)"
    )


async def test_a_removed_entry_is_named_by_verify_on_sqlite(
    tmp_path: Path, emulator: SlackEmulator, clock: FakeClock
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'removed.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        slack_bot_token="xoxb-1",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=emulator.base_url,
        database_url=url,
    )
    harness = await start_harness(settings, emulator, clock)
    try:
        await lifecycle(harness)
    finally:
        await stop_harness(harness)
    ids = [
        row[0] for row in await sql(url, f"SELECT id FROM audit_event WHERE change_id = '{CR}' ORDER BY id")
    ]
    await sql(url, f"DELETE FROM audit_event WHERE id = {ids[1]}")
    code, _out, err = await run("audit", "verify", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
    assert code == 1
    assert f"audit entry {ids[2]} ({CR}) is broken: it does not follow entry {ids[0]}" in err


async def test_twenty_refused_clicks_by_a_bystander_write_one_audit_entry(harness: Harness) -> None:
    await harness.file_change()
    for _ in range(20):
        await harness.click("change_approve", CR, user="UNOBODY")
    replies = [c for c in harness.slack.calls_to("chat.postEphemeral") if c.params["user"] == "UNOBODY"]
    assert len(replies) == 20  # every click is still answered
    refused = [e for e in (await harness.change(CR)).audit if e.action.value == "decision_refused"]
    assert len(refused) == 1
    harness.clock.advance(timedelta(seconds=61))
    await harness.click("change_approve", CR, user="UNOBODY")
    refused = [e for e in (await harness.change(CR)).audit if e.action.value == "decision_refused"]
    assert len(refused) == 2 and refused[1].details["repeats_not_written"] == 19


async def test_the_feed_token_is_stored_hashed_and_shown_once(harness: Harness, tmp_path: Path) -> None:
    env = db_env(harness, tmp_path)
    code, out, err = await run(
        "calendar", "token", "--base-url", "https://bot.example.com", env=env, cwd=tmp_path
    )
    assert code == 0, err
    token = out.strip().split("token=")[1]
    stored = [row[0] for row in await sql(harness.bot.settings.database_url, "SELECT token FROM feed_token")]
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert (await harness.http.get(f"/calendar.ics?token={token}")).status == 200
    assert (await harness.http.get(f"/calendar.ics?token={stored[0]}")).status == 403  # the hash is no key
    code, out, err = await run("calendar", "token", env=env, cwd=tmp_path)
    assert code == 1 and out == "" and token not in err and "--rotate" in err
    code, out, err = await run("calendar", "token", "--rotate", env=env, cwd=tmp_path)
    assert code == 0, err
    rotated = out.strip().split("token=")[1]
    assert (await harness.http.get(f"/calendar.ics?token={token}")).status == 403
    assert (await harness.http.get(f"/calendar.ics?token={rotated}")).status == 200


async def start_harness(settings: Settings, emulator: SlackEmulator, clock: FakeClock) -> Harness:
    bot = build_changebot(settings, parse_policy(TEST_POLICY), clock=clock)
    await bot.start(run_scheduler=False)
    await bot.context.dispatcher.drain()
    http = TestClient(TestServer(bot.web))
    await http.start_server()
    return Harness(bot, http, emulator, clock)


async def stop_harness(harness: Harness) -> None:
    await harness.http.close()
    await harness.bot.stop()


async def test_upgrade_hashes_existing_tokens_and_audit_entries(
    database_url: str, emulator: SlackEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    """A database from before the chain and the hashed token: old feed URLs keep working
    and the old entries verify."""
    from alembic import command

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0006")
    await sql(
        database_url,
        "INSERT INTO feed_token (token, created_at) VALUES ('old-plain-token', '2026-11-01 00:00:00+00')",
    )
    for n, change in enumerate(("CR-2026-0007", None, "CR-2026-0007", None)):
        await sql(
            database_url,
            "INSERT INTO audit_event (change_id, actor, action, at, details) VALUES "
            f"({repr(change) if change else 'NULL'}, 'U{n}', 'submitted', '2026-11-0{n + 1} 09:00:00+00', "
            '\'{"n": ' + str(n) + ', "text": "caf\u00e9"}\')',
        )
    await asyncio.to_thread(upgrade, database_url)
    code, out, err = await run("audit", "verify", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path)
    assert code == 0 and "4 entries on 2 chains" in out, err
    settings = Settings(
        slack_bot_token="xoxb-1",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=emulator.base_url,
        database_url=database_url,
    )
    harness = await start_harness(settings, emulator, clock)
    try:
        assert (await harness.http.get("/calendar.ics?token=old-plain-token")).status == 200
        await harness.file_change()  # new entries chain on after the migrated ones
    finally:
        await stop_harness(harness)
    code, out, err = await run("audit", "verify", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path)
    assert code == 0, err


async def test_database_commands_need_no_slack_settings(harness: Harness, tmp_path: Path) -> None:
    await harness.file_change()
    env = db_env(harness, tmp_path)
    assert not any(name.startswith("SLACK_") for name in env)
    for args in (
        ("db", "upgrade"),
        ("policy", "check"),
        ("changes", "show", CR),
        ("calendar", "token"),
        ("calendar", "export", "--out", str(tmp_path / "changes.ics")),
        ("audit", "export", "--since", "2026-11-01", "--until", "2026-12-01"),
        ("audit", "verify"),
    ):
        code, _out, err = await run(*args, env=env, cwd=tmp_path)
        assert code == 0, (args, err)
    assert b"BEGIN:VCALENDAR" in (tmp_path / "changes.ics").read_bytes()


async def export_to(harness: Harness, tmp_path: Path, out: Path | str, *extra: str) -> tuple[int, str, str]:
    return await run(
        "audit",
        "export",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
        "--out",
        str(out),
        *extra,
        env=db_env(harness, tmp_path),
        cwd=tmp_path,
    )


async def test_audit_export_out_never_overwrites_nor_follows_links(harness: Harness, tmp_path: Path) -> None:
    await harness.file_change()
    existing = tmp_path / "audit.csv"
    existing.write_text("keep me\n")
    code, _out, err = await export_to(harness, tmp_path, existing)
    assert code == 2 and err.strip() == f"{existing} exists: pass --force to replace it"
    assert existing.read_text() == "keep me\n"
    code, _out, err = await export_to(harness, tmp_path, existing, "--force")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(existing.read_text())))
    assert [r["action"] for r in rows] == ["submitted"] and len(rows[0]["hash"]) == 64

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    for extra in ((), ("--force",)):
        code, _out, err = await export_to(harness, tmp_path, link, *extra)
        assert code == 2 and "symbolic link" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == "precious\n" and link.is_symlink()
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    code, _out, err = await export_to(harness, tmp_path, dangling)
    assert code == 2 and "symbolic link" in err and not (tmp_path / "nowhere.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


async def test_audit_export_out_bad_paths_get_one_line(harness: Harness, tmp_path: Path) -> None:
    code, _out, err = await export_to(harness, tmp_path, tmp_path / "missing" / "audit.csv")
    assert (
        code == 2
        and err.strip() == f"{tmp_path / 'missing'} does not exist (or is not a directory): create it first"
    )
    code, _out, err = await export_to(harness, tmp_path, tmp_path)
    assert code == 2 and err.strip() == f"{tmp_path} is a directory: name a file to write"
    # As root every directory is writable: the export then runs as nobody, in a directory
    # nobody can reach but not write.
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    locked = base / "locked"
    locked.mkdir(mode=0o555)
    command = [CHANGEBOT, "audit", "export", "--since", "2026-11-01", "--until", "2026-12-01"]
    command += ["--out", str(locked / "audit.csv")]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *command]
    try:
        process = await asyncio.create_subprocess_exec(
            *command, env=db_env(harness, tmp_path), cwd=base, stdout=PIPE, stderr=PIPE
        )
        _out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2
        assert err.decode().strip() == f"cannot write in {locked}: permission denied"
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)


async def test_two_replicas_appending_at_once_keep_every_chain_whole(db: Db, database_url: str) -> None:
    """Two processes' worth of connections append to the same chains concurrently: no
    fork (the unique prev_hash would refuse one), no lost entry, and verify passes."""
    other_engine = create_engine(database_url)
    other = SqlChangeRepository(session_factory(other_engine))
    now = START

    async def append(repo: SqlChangeRepository, i: int) -> None:
        change_id = (CR, "CR-2026-0002", None)[i % 3]
        await repo.append_audit(change_id, AuditEntry(f"U{i}", AuditAction.ACTION_REFUSED, now, {"i": i}))

    try:
        await asyncio.gather(*(append(db.repo if i % 2 else other, i) for i in range(60)))
    finally:
        await other_engine.dispose()
    report = await verify_chains(db.sessions)
    assert report == ChainReport(entries=60, chains=3, broken=None)
