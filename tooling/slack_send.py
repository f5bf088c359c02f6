"""`changebot slack send`: act as a Slack user against a running `changebot demo --interactive`.

It signs a slash command or a button click with the demo's signing secret and posts it
to the bot, as Slack would, then prints the reply only the sender sees. Everything else
the bot does (messages, modals, DMs) shows in the demo's own output.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from domain.clock import SystemClock
from tooling.render import Names, message_to_text
from tooling.slack_payloads import click_body, command_body, form_headers, trigger_id

STATE_NAME = "changebot-demo.json"
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


class SendError(Exception):
    """One readable line; exit code 1."""


@dataclass(frozen=True)
class DemoState:
    """What a client needs to reach a running demo; written by the demo, read by `send`."""

    bot_url: str
    emulator_url: str
    signing_secret: str
    # The demo's clock runs ahead of the wall clock (it played a scripted week first);
    # requests are signed with the demo's time or the bot rejects them as stale.
    clock_offset_seconds: float
    pid: int
    users: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)


def default_state_path() -> Path:
    """$XDG_RUNTIME_DIR (per user, private) when there is one, else the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / STATE_NAME
    suffix = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    return Path(tempfile.gettempdir()) / STATE_NAME.replace(".json", f"{suffix}.json")


def write_state(path: Path, state: DemoState) -> None:
    """Owner-only (it holds the signing secret), and atomic so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(state), file, indent=2)
    partial.replace(path)


def read_state(path: Path) -> DemoState:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DemoState(**data)
    except FileNotFoundError:
        raise SendError(
            f"no running demo found ({path} does not exist): start one with `changebot demo --interactive`"
        ) from None
    except (ValueError, TypeError) as exc:
        raise SendError(f"{path} is not a changebot demo state file: {exc}") from None


@dataclass(frozen=True)
class Request:
    """A parsed `changebot slack send` invocation."""

    user: str
    channel: str
    command: str | None = None
    text: str = ""
    click: tuple[str, str] | None = None


def parse_request(
    text: str | None, *, user: str, channel: str, click: list[str] | tuple[str, str] | None
) -> Request:
    if not USER_ID.match(user):
        raise SendError(f"--as wants a Slack user id like U123, not {user!r}")
    if click:
        if text:
            raise SendError("send either a slash command or --click, not both")
        action_id, value = click
        return Request(user=user, channel=channel, click=(action_id, value))
    if not text or not text.strip().startswith("/"):
        raise SendError("say what to send: a slash command like '/change help', or --click ACTION_ID VALUE")
    command, _, rest = text.strip().partition(" ")
    return Request(user=user, channel=channel, command=command, text=rest.strip())


def request_body(request: Request, state: DemoState, *, serial: int, now: float) -> bytes:
    trigger = trigger_id(request.user, serial)
    if request.click is not None:
        action_id, value = request.click
        return click_body(
            action_id, value, user=request.user, channel=request.channel, trigger=trigger, at=now
        )
    assert request.command is not None
    return command_body(
        request.text,
        user=request.user,
        trigger=trigger,
        channel=request.channel,
        channel_name=state.channels.get(request.channel, request.channel.lower()),
        command=request.command,
    )


def describe_reply(status: int, body: str, *, user: str, names: Names) -> str:
    """The bot's HTTP answer as the sender would see it in Slack."""
    if status == 401:
        return "The bot refused the request: bad or stale signature (is the state file from this demo?)."
    if status != 200:
        return f"The bot answered HTTP {status}: {body[:300]}"
    if not body.strip():
        return "Acknowledged. What the bot does next shows in the demo's output."
    try:
        reply: Any = json.loads(body)
    except ValueError:
        return body
    if not isinstance(reply, dict):
        return body
    if reply.get("response_action") == "errors":
        errors = reply.get("errors") or {}
        return "The form shows errors:\n" + "\n".join(f"  {k}: {v}" for k, v in errors.items())
    shown = message_to_text(reply.get("text"), reply.get("blocks"), names)
    return f"(only {names.user(user)} sees this)\n{shown}"


async def send(request: Request, state: DemoState, *, out: TextIO) -> int:
    now = SystemClock().now() + timedelta(seconds=state.clock_offset_seconds)
    body = request_body(request, state, serial=int(now.timestamp() * 1000), now=now.timestamp())
    headers = form_headers(body, timestamp=int(now.timestamp()), secret=state.signing_secret)
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(state.bot_url, data=body, headers=headers) as response,
        ):
            status, text = response.status, await response.text()
    except (aiohttp.ClientError, OSError) as exc:
        raise SendError(
            f"no demo answers at {state.bot_url} ({exc}); start one with `changebot demo --interactive`"
        ) from None
    names = Names(users=state.users, channels=state.channels)
    if request.click is None:
        what = f"{request.command} {request.text}".strip()
    else:
        action_id, value = request.click
        what = f"clicks {action_id} {value}"
    print(f"{names.user(request.user)} → {what}", file=out)
    print(describe_reply(status, text, user=request.user, names=names), file=out)
    return 0 if status == 200 else 1


async def send_main(
    text: str | None,
    *,
    user: str,
    channel: str,
    click: list[str] | None,
    state_path: str | None,
    out: TextIO = sys.stdout,
) -> int:
    request = parse_request(text, user=user, channel=channel, click=click)
    state = read_state(Path(state_path) if state_path else default_state_path())
    return await send(request, state, out=out)
