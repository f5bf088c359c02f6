"""Running `changebot` as a real process: its environment, a free port, `serve`, health."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

CHANGEBOT = str(Path(sys.executable).with_name("changebot"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHANGEBOT_", "DATABASE_"))}
    env.update(extra)
    return env


async def run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        CHANGEBOT, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def spawn_serve(
    cwd: Path, port: int, env: dict[str, str], *, stdout: Any, own_session: bool = False
) -> asyncio.subprocess.Process:
    """`changebot serve` on loopback as its own process (own_session: killable as a group)."""
    return await asyncio.create_subprocess_exec(
        CHANGEBOT,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        cwd=cwd,
        stdout=stdout,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=own_session,
    )


async def wait_healthy(http: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("bot never became healthy")
