#!/usr/bin/env python
"""The restarted bot of `bench_timeline.py --parts restart`: what `changebot serve` does
at start-up (imports, policy file, migration, build, HTTP listener, start), printing when
each stage ends. Kept apart from the benchmark so that the process imports what `serve`
imports and nothing more (no emulator, no test helpers).

    python bench/restart_child.py DATABASE_URL SLACK_API_URL POLICY_FILE START_ISO T0
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def stage(name: str) -> None:
    print(json.dumps({"stage": name, "t": time.monotonic()}), flush=True)


async def serve(database_url: str, slack_api_url: str, policy_file: str, start_iso: str, t0: float) -> None:
    import asyncio
    import signal
    from datetime import datetime, timedelta

    from aiohttp import web

    from bot.app import build_changebot, migrate
    from bot.cli import load_policy
    from bot.settings import Settings

    stage("imported")

    class BenchClock:
        """The benchmark's simulated date, moving in real time (see RealTimeClock)."""

        def __init__(self) -> None:
            self.start = datetime.fromisoformat(start_iso)

        def now(self) -> datetime:
            return self.start + timedelta(seconds=time.monotonic() - t0)

    settings = Settings(
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench-secret",
        slack_api_url=slack_api_url,
        database_url=database_url,
    )
    policy = load_policy(policy_file)
    await migrate(settings)
    stage("migrated")
    bot = build_changebot(settings, policy, clock=BenchClock())
    stage("built")
    runner = web.AppRunner(bot.web, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await bot.start()
    stage("started")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    # Gone at once, like a killed replica: the process's end closes its connections, and
    # the benchmark drops the database next. (A graceful stop would cancel the scheduler's
    # jobs mid-pass and print their tracebacks into the benchmark's output.)
    os._exit(0)


if __name__ == "__main__":
    import asyncio
    import gc

    gc.disable()  # as `changebot serve` does until Changebot.start()

    url, slack, policy_path, start, origin = sys.argv[1:6]
    asyncio.run(serve(url, slack, policy_path, start, float(origin)))
