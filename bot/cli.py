"""`changebot`: serve over HTTP, run in Socket Mode, inspect changes, migrate the database."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO, cast

from aiohttp import web

from bot.change_json import change_as_json
from bot.logs import configure_logging
from bot.safe_output import OutputError, output_file
from bot.settings import DatabaseSettings, Settings, SettingsError, load_log_settings, load_settings
from domain.bounds import period_problem
from domain.clock import SystemClock
from domain.policy import Policy, PolicyError
from domain.policy_loader import parse_policy

log = logging.getLogger("changebot")


class StartupError(Exception):
    """Printed as one line (or one line per policy problem); exit code 2."""


def load_policy(path: str) -> Policy:
    file = Path(path)
    if not file.is_file():
        raise StartupError(
            f"changebot cannot start: no policy file at {file} "
            "(copy policy.example.yml to policy.yml or set CHANGEBOT_POLICY)"
        )
    try:
        return parse_policy(file.read_text(encoding="utf-8"), source=str(file))
    except PolicyError as exc:
        raise StartupError(exc.render()) from None


def _settings(*require: str) -> Settings:
    try:
        return load_settings(require=require)
    except SettingsError as exc:
        raise StartupError(str(exc)) from None


def _database_url() -> str:
    """For the commands that only read or write the database: no Slack credentials needed."""
    return DatabaseSettings().database_url


async def _on_current_schema(work: Callable[[], Awaitable[int]]) -> int:
    """Run a command that reads or writes the database without migrating it, once the
    schema is known to be current (same event loop, so a failed probe cleans up in it)."""
    await _require_current_schema()
    return await work()


async def _require_current_schema() -> None:
    """A database behind the code gets one line saying what to run, not a traceback."""
    from storage.database import create_engine
    from storage.migrate import HEAD_REVISION, current_revision

    engine = create_engine(_database_url())
    try:
        current = await current_revision(engine)
    except Exception:  # unreachable or unreadable: the command itself says what went wrong
        return
    finally:
        await engine.dispose()
    if current != HEAD_REVISION:
        raise StartupError(
            f"the database schema is at {current or 'nothing yet'}, this changebot needs {HEAD_REVISION}: "
            "run `changebot db upgrade` first"
        )


async def _serve(host: str, port: int) -> None:
    settings = _settings("slack_bot_token", "slack_signing_secret")
    policy = load_policy(settings.changebot_policy)
    from bot.app import build_changebot

    stop = _stop_on_signal()
    await _migrate(settings)
    bot = build_changebot(settings, policy)
    runner = web.AppRunner(bot.web, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await bot.start()
    log.info("changebot listening on http://%s:%s/slack/events", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await bot.stop()


async def _migrate(settings: Settings) -> None:
    from bot.app import SchemaOutOfDate, migrate

    try:
        await migrate(settings)
    except SchemaOutOfDate as exc:
        raise StartupError(str(exc)) from None


async def _socket() -> None:
    settings = _settings("slack_bot_token", "slack_app_token")
    policy = load_policy(settings.changebot_policy)
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    from bot.app import build_changebot

    stop = _stop_on_signal()
    await _migrate(settings)
    bot = build_changebot(settings, policy)
    handler = AsyncSocketModeHandler(bot.bolt, settings.slack_app_token)
    await bot.start()
    await handler.connect_async()
    log.info("changebot connected in Socket Mode")
    try:
        await stop.wait()
    finally:
        await handler.close_async()
        await bot.stop()


def _stop_on_signal() -> asyncio.Event:
    """Set on SIGINT/SIGTERM. Installed before startup, so a signal that lands while the bot
    is still starting (the port may already answer /healthz) stops it cleanly instead of
    killing it mid-start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _show_change(change_id: str, as_json: bool) -> int:
    from storage.database import create_engine, session_factory
    from storage.repository import SqlChangeRepository

    engine = create_engine(_database_url())
    try:
        change = await SqlChangeRepository(session_factory(engine)).get_change(change_id.strip().upper())
    finally:
        await engine.dispose()
    if change is None:
        print(f"{change_id}: no such change", file=sys.stderr)
        return 1
    data = change_as_json(change)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(f"{change.id}  {change.status.value}  {change.draft.category.value}  risk {change.risk.value}")
        print(f"  {change.draft.title}")
        for approval in data["approvals"]:
            print(f"  {approval['at']}  {approval['user']}  {approval['decision']}  ({approval['role']})")
        for event in data["audit"]:
            print(f"  audit {event['at']}  {event['actor']}  {event['action']}")
    return 0


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StartupError(
            f"'{text}' is not an ISO date or time like 2026-11-01 or 2026-11-01T09:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _audit_export(args: argparse.Namespace) -> int:
    from adapters.audit_export import export_audit
    from storage.database import create_engine, session_factory

    since, until = _moment(args.since), _moment(args.until)
    problem = period_problem(since, until, now=SystemClock().now())
    if problem:
        raise StartupError(f"{problem} (ISO dates or times like 2026-11-01 or 2026-11-01T09:00)")
    engine = create_engine(_database_url())
    try:
        if args.out == "-":
            count = await export_audit(
                session_factory(engine), since=since, until=until, fmt=args.format, out=sys.stdout
            )
        else:
            with output_file(args.out, force=args.force) as out:
                count = await export_audit(
                    session_factory(engine), since=since, until=until, fmt=args.format, out=cast(TextIO, out)
                )
    finally:
        await engine.dispose()
    print(f"exported {count} audit events", file=sys.stderr)
    return 0


async def _audit_verify() -> int:
    """Exit 0 when every chain holds; 1 naming the first entry that does not fit."""
    from storage.audit_chain import verify_chains
    from storage.database import create_engine, session_factory

    engine = create_engine(_database_url())
    try:
        report = await verify_chains(session_factory(engine))
    finally:
        await engine.dispose()
    if report.broken is None:
        print(f"audit trail intact: {report.entries} entries on {report.chains} chains")
        return 0
    broken = report.broken
    print(
        f"audit entry {broken.id} ({broken.change_id or 'no change'}) is broken: {broken.problem}",
        file=sys.stderr,
    )
    return 1


async def _calendar(args: argparse.Namespace) -> int:
    """Token handling and export work on the database alone; no Slack connection is made."""
    from bot.calendar_cli import calendar_export_command, feed_token_command

    if args.action == "token":
        return await feed_token_command(
            database_url=_database_url(), rotate=args.rotate, base_url=args.base_url
        )
    settings = DatabaseSettings()
    policy = load_policy(settings.changebot_policy)
    return await calendar_export_command(
        database_url=settings.database_url, policy=policy, out=args.out, force=args.force
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="changebot", description="Change management inside Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run over HTTP (Slack posts to /slack/events)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    sub.add_parser("socket", help="run in Socket Mode (no public URL needed)")
    changes = sub.add_parser("changes", help="inspect change requests").add_subparsers(
        dest="action", required=True
    )
    show = changes.add_parser("show", help="print one change with approvals and audit trail")
    show.add_argument("change_id")
    show.add_argument("--json", action="store_true")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations")
    policy = sub.add_parser("policy", help="policy file").add_subparsers(dest="action", required=True)
    check = policy.add_parser("check", help="validate a policy file")
    check.add_argument("path", nargs="?")
    calendar = sub.add_parser("calendar", help="the ICS change calendar").add_subparsers(
        dest="action", required=True
    )
    token = calendar.add_parser("token", help="make the feed's secret URL (shown once)")
    token.add_argument("--rotate", action="store_true", help="revoke the old token, make a new one")
    token.add_argument("--base-url", default="https://YOUR-HOST", help="where changebot serve is reachable")
    export = calendar.add_parser("export", help="write the calendar as an .ics file")
    export.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    export.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    audit_export = audit.add_parser("export", help="write every audit event in a period")
    audit_export.add_argument(
        "--since", required=True, help="ISO date or time (UTC unless it says otherwise)"
    )
    audit_export.add_argument("--until", required=True, help="ISO date or time, exclusive")
    audit_export.add_argument("--format", choices=["csv", "json"], default="csv")
    audit_export.add_argument("--out", default="-", help="file to write ('-' for standard output)")
    audit_export.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    audit.add_parser("verify", help="check the audit trail's hash chains; name the first broken entry")
    _api_parsers(sub)
    demo = sub.add_parser("demo", help="play the change process against an emulated Slack (no workspace)")
    demo.add_argument("--interactive", action="store_true", help="keep running for your own commands")
    demo.add_argument("--state", help="where to write the URLs and secret `slack send` reads")
    slack = sub.add_parser("slack", help="act as a Slack user").add_subparsers(dest="action", required=True)
    send = slack.add_parser("send", help="send a slash command or a click to a running demo")
    send.add_argument("text", nargs="?", help="a slash command, like '/change help'")
    send.add_argument("--as", dest="user", default="UALICE", help="the Slack user id sending it")
    send.add_argument("--channel", default="CCHANGES", help="where it is sent from")
    send.add_argument("--click", nargs=2, metavar=("ACTION_ID", "VALUE"), help="click a button instead")
    send.add_argument("--state", help="the demo's state file (default: the one the demo wrote)")
    return parser


def _api_parsers(sub: Any) -> None:
    """`api-token` (the REST API's tokens) and `gate` (a pipeline asks a change's gate)."""
    tokens = sub.add_parser("api-token", help="tokens for the REST API (pipelines)").add_subparsers(
        dest="action", required=True
    )
    tokens.add_parser("create", help="make a token (shown once)").add_argument("name")
    tokens.add_parser("list", help="names, creation, last use and revocation")
    tokens.add_parser("revoke", help="stop a token working").add_argument("name")
    gate = sub.add_parser("gate", help="ask a change's gate: exit 0 go, 1 stop, 2 wait, 3 cannot ask")
    gate.add_argument("change_id")
    gate.add_argument("--service", help="the service this deploy is of")
    gate.add_argument("--wait", action="store_true", help="wait until the answer is go or stop")
    gate.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most (3600)")
    gate.add_argument("--url", default=os.environ.get("CHANGEBOT_URL"), help="default: $CHANGEBOT_URL")
    gate.add_argument(
        "--token", default=os.environ.get("CHANGEBOT_API_TOKEN"), help="default: $CHANGEBOT_API_TOKEN"
    )


def _gate(args: argparse.Namespace) -> int:
    from bot.gate_client import CANNOT_ASK, GateQuestion, run_gate

    if not args.url or not args.token:
        print(
            "changebot gate: set --url and --token (or CHANGEBOT_URL and CHANGEBOT_API_TOKEN)",
            file=sys.stderr,
        )
        return CANNOT_ASK
    question = GateQuestion(
        base_url=args.url, token=args.token, change_id=args.change_id, service=args.service
    )
    return run_gate(question, wait=args.wait, timeout=max(args.timeout, 0))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        logs = load_log_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(level=logs.log_level, fmt=logs.log_format)
    if args.command in ("serve", "socket"):
        # Imports and start-up make objects, not garbage: collecting while they load only
        # slows a restart (~0.1 s). Changebot.start() freezes what was loaded and turns
        # the collector back on.
        gc.disable()
    try:
        if args.command == "serve":
            asyncio.run(_serve(args.host, args.port))
        elif args.command == "socket":
            asyncio.run(_socket())
        elif args.command == "changes":
            return asyncio.run(_on_current_schema(lambda: _show_change(args.change_id, args.json)))
        elif args.command == "db":
            from storage.migrate import upgrade

            upgrade(_database_url())
            print("database schema is current")
        elif args.command == "policy":
            path = (
                args.path
                or os.environ.get("CHANGEBOT_POLICY")
                or Settings.model_fields["changebot_policy"].default
            )
            load_policy(path)
            print(f"{path}: policy is valid")
        elif args.command == "audit":
            audit = _audit_verify if args.action == "verify" else partial(_audit_export, args)
            return asyncio.run(_on_current_schema(audit))
        elif args.command == "calendar":
            return asyncio.run(_on_current_schema(partial(_calendar, args)))
        elif args.command == "api-token":
            from bot.api_tokens_cli import api_token_command

            name = getattr(args, "name", None)
            tokens = partial(api_token_command, database_url=_database_url(), action=args.action, name=name)
            return asyncio.run(_on_current_schema(tokens))
        elif args.command == "gate":
            return _gate(args)
        elif args.command == "demo":
            # tooling/ sits above bot/ (it builds the app): reached by name, lazily, from here only
            demo = importlib.import_module("tooling.demo")
            return demo.demo_main(interactive=args.interactive, state_path=args.state)
        elif args.command == "slack":
            send = importlib.import_module("tooling.slack_send")
            try:
                sending = send.send_main(
                    args.text, user=args.user, channel=args.channel, click=args.click, state_path=args.state
                )
                return asyncio.run(sending)
            except send.SendError as exc:
                print(str(exc), file=sys.stderr)
                return 1
    except (StartupError, OutputError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
