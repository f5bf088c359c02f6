#!/usr/bin/env python
"""Ack-latency benchmark for changebot against a bare Bolt app (a script, not a test).

    python bench/bench_ack.py [--db sqlite|postgres|both] [--requests N] [--concurrency 20]
                              [--warmup 20] [--profile [--profile-acks]] [--json PATH] [--keep]

Defaults: --db both --requests 600 --concurrency 20 --warmup 20 (about 4 min on 2 cores).
600, not 200: at 200 the p99 is the second-slowest request, so one stall of the
machine sets it; at 600 it is the sixth-slowest, and runs agree with each other.
Results and findings: bench/ACK.md.

Three interactions, each sent N times by `--concurrency` closed-loop clients (one aiohttp
ClientSession, keep-alive, one request in flight per client) over real loopback HTTP,
signed exactly as Slack signs them (tooling/slack_payloads.py):

  (a) `/change new`          slash command: ack, then views.open
  (b) Approve click          block_actions: ack, then the decision is stored and the card
                             updates go out through the outbox (chat.update x copies, DM)
  (c) CR modal submission    view_submission: validated and stored *before* the ack

Two servers, each in its own Python process, served by aiohttp (web.AppRunner + TCPSite on
a free loopback port), talking to the same SlackEmulator (tooling/emulator/), which runs in
the orchestrating process:

  changebot  build_changebot(settings, policy) (SystemClock, outbox pace 0 so the
             follow-up work is not spread over minutes by the 1 msg/s/channel pacing;
             APScheduler ticking), migrated like `changebot serve`, logging at INFO
  bare Bolt  slack_bolt AsyncApp(signing_secret=...).web_app(): signature checked by Bolt,
             the same Slack calls with the same bytes changebot sent (the modal and card
             are captured from the emulator after changebot's warm-up):
             (a) ack + views.open, (b) ack + chat.postEphemeral + chat.update,
             (c) an in-memory "store", ack, then the card to #changes, the "filed" DM
                 to the requester and the card to each approver (4 chat.postMessage)

A third process generates the load, so neither server shares its event loop with the
clients or the emulator. Latency = client-side time from sending the request to reading
the whole response (the ack). Also measured: views.open / card update arrival at the
emulator (same CLOCK_MONOTONIC across processes), server CPU per interaction, event-loop
lag in the server, peak RSS (resource.getrusage) and start-up time (build + start ->
first 200 from /healthz). `--profile` runs changebot's measured phases under pyinstrument
(if installed) or cProfile and prints where the time goes.

Order per database: start changebot (migrating an empty database), warm up every path,
start bare Bolt, then (a), (c) and (b) for changebot and then bare Bolt; between phases
the changebot outbox is drained, so no phase pays for the previous one's follow-up work.
The CRs filed in (c) are the ones approved in (b) (windows never overlap: no conflict
warnings). Last, changebot is restarted on the populated database (start-up again).
Only writes `--json PATH` if asked; databases and logs live in a temp directory
(kept with --keep, or when a run fails).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the tests' helpers: tests.support.<module>
    sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
FORM = "application/x-www-form-urlencoded"
CHANGES = "CCHANGES"
BARE_CHANNEL = "CBARE"
LEADS = ("ULEAD1", "ULEAD2")
SLOW_SECONDS = 3.0
CR_ID = re.compile(r"\bCR-\d{4}-\d{4,}\b")


# =========================================================================== stats


def pct(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": pct(ordered, 50),
        "p90": pct(ordered, 90),
        "p99": pct(ordered, 99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 1000:.1f}"


# =========================================================================== server role


def _machine_busy_s() -> float:
    """CPU-seconds all processes on the machine spent busy so far (from /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _rusage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        rss_kb = int(Path("/proc/self/statm").read_text().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    # The peak from /proc (VmHWM) is this process's own; ru_maxrss can carry the peak of
    # the parent that spawned it (the orchestrator, grown with the emulator's messages).
    peak_kb = usage.ru_maxrss
    with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        peak_kb = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": peak_kb / 1024,
        "rss_mb": rss_kb / 1024,
    }


class LoopLag:
    """Samples how late a 20 ms sleep wakes up: the time the loop was blocked or queued."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.02)
            self.samples.append(time.perf_counter() - t0 - 0.02)

    def take(self) -> dict[str, Any]:
        out = summary(self.samples)
        self.samples = []
        return out


class GcPauses:
    """Garbage-collector pauses per generation (count, total and longest ms): a pause
    holds every request in flight, so a tail made of many equal latencies is often one."""

    def __init__(self) -> None:
        import gc

        self._started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def take(self) -> dict[str, Any]:
        out = {
            f"gen{g}": {
                "n": len(p),
                "total_ms": round(1000 * sum(p), 1),
                "max_ms": round(1000 * max(p, default=0), 1),
            }
            for g, p in self.pauses.items()
        }
        self.pauses = {0: [], 1: [], 2: []}
        return out


class Profiling:
    """pyinstrument (whole main thread, async_mode disabled) if importable, else cProfile."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.kind = "none"
        self.name = "profile"
        self._profiler: Any = None

    def start(self, name: str) -> None:
        self.name = name
        try:
            from pyinstrument import Profiler

            self._profiler = Profiler(interval=0.0005, async_mode="disabled")
            self.kind = "pyinstrument"
        except ImportError:
            import cProfile

            self._profiler = cProfile.Profile()
            self.kind = "cProfile"
        self._profiler.start() if self.kind == "pyinstrument" else self._profiler.enable()

    def stop(self) -> str:
        if self._profiler is None:
            return ""
        if self.kind == "pyinstrument":
            self._profiler.stop()
            text = self._profiler.output_text(unicode=False, color=False, show_all=False, timeline=False)
            path = self.out_dir / f"{self.name}-pyinstrument.txt"
            path.write_text(text)
            self._write_flat(self._profiler)
            return str(self.out_dir / f"{self.name}-flat.txt")
        import pstats

        self._profiler.disable()
        path = self.out_dir / f"{self.name}-cprofile.txt"
        with path.open("w") as handle:
            stats = pstats.Stats(self._profiler, stream=handle)
            stats.sort_stats("tottime").print_stats(45)
            stats.sort_stats("cumulative").print_stats(
                re.escape(str(ROOT)) + r"/(bot|handlers|domain|storage|modals)/", 45
            )
        return str(path)

    def _write_flat(self, profiler: Any) -> None:
        """Self time per function (file:function), the flat view of pyinstrument's tree."""
        session = profiler.last_session
        if session is None:
            return
        root = session.root_frame()
        self_time: dict[str, float] = {}
        total_time: dict[str, float] = {}

        def walk(frame: Any, seen: frozenset[str]) -> None:
            key = f"{_short(frame.file_path)}:{frame.function}"
            if key not in seen:
                total_time[key] = total_time.get(key, 0.0) + frame.time
            # pyinstrument 5 keeps a frame's own time in synthetic "[self]"-like children.
            real = [c for c in frame.children if not str(c.function).startswith("[")]
            own = frame.time - sum(child.time for child in real)
            self_time[key] = self_time.get(key, 0.0) + max(0.0, own)
            for child in real:
                walk(child, seen | {key})

        if root is not None:
            walk(root, frozenset())
        total = session.duration or 1.0
        lines = [f"session {session.duration:.2f}s, samples {session.sample_count}", "", "self time:"]
        for key, value in sorted(self_time.items(), key=lambda kv: -kv[1])[:40]:
            lines.append(f"{value:8.3f}s {100 * value / total:5.1f}%  {key}")
        lines += ["", "inclusive time, project code only:"]
        project = [
            kv
            for kv in total_time.items()
            if kv[0].startswith(("bot/", "handlers/", "domain/", "storage/", "modals/", "scheduler/"))
        ]
        for key, value in sorted(project, key=lambda kv: -kv[1])[:40]:
            lines.append(f"{value:8.3f}s {100 * value / total:5.1f}%  {key}")
        lines += ["", "inclusive time, libraries (top):"]
        libs = [kv for kv in total_time.items() if "site-packages/" in kv[0] or kv[0].startswith("lib:")]
        for key, value in sorted(libs, key=lambda kv: -kv[1])[:40]:
            lines.append(f"{value:8.3f}s {100 * value / total:5.1f}%  {key}")
        (self.out_dir / f"{self.name}-flat.txt").write_text("\n".join(lines) + "\n")


def _short(path: str | None) -> str:
    if not path:
        return "?"
    if str(ROOT) + "/" in path and "site-packages" not in path:
        return path.split(str(ROOT) + "/", 1)[1]
    if "site-packages/" in path:
        return "lib:" + path.split("site-packages/", 1)[1]
    if "/lib/python3" in path:
        return "std:" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path


def _count_sql(engine: Any, into: dict[str, float]) -> None:
    """Timing log of the database: statements and their time as SQLAlchemy sees it (in the
    greenlet: the driver round trip including the hop to aiosqlite's thread or asyncpg),
    with BEGIN [IMMEDIATE] apart: on SQLite that is the wait for the write lock."""
    from sqlalchemy import event

    for key in ("statements", "statement_s", "begins", "begin_s", "begin_max_s"):
        into[key] = 0.0

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        took = time.perf_counter() - conn.info["bench_t0"].pop()
        key = "sql " + " ".join(statement.split()[:4])[:60]
        into[key] = into.get(key, 0.0) + took
        into["n " + key] = into.get("n " + key, 0.0) + 1
        if statement.startswith("BEGIN"):
            into["begins"] += 1
            into["begin_s"] += took
            into["begin_max_s"] = max(into["begin_max_s"], took)
        else:
            into["statements"] += 1
            into["statement_s"] += took


async def _stdin_closed() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def serve_role(args: argparse.Namespace) -> None:
    """Build one server, print READY {json}, serve until stdin closes, print FINAL {json}."""
    import logging

    t_import = time.perf_counter()
    from aiohttp import ClientSession, web

    from bot.settings import Settings

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings: dict[str, int] = {}

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                text = record.getMessage().split("\n", 1)[0]
                text = re.sub(r"\(trigger: .*", "(...)", text)  # APScheduler names the next run time
                key = f"{record.levelname} {record.name}: {text}"[:160]
                warnings[key] = warnings.get(key, 0) + 1

    logging.getLogger().addHandler(Counter())
    lag = LoopLag()
    gc_pauses = GcPauses()
    profiling = Profiling(Path(args.out_dir))
    timings: dict[str, float] = {}
    sql: dict[str, float] = {}

    if args.kind == "changebot":
        from bot.app import build_changebot, migrate
        from domain.policy_loader import parse_policy
        from tests.support.policy_fixture import TEST_POLICY

        timings["import_s"] = time.perf_counter() - t_import
        settings = Settings(
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=args.emulator,
            database_url=args.database,
        )
        if args.migrate:
            t0 = time.perf_counter()
            await migrate(settings)
            timings["migrate_s"] = time.perf_counter() - t0
        t_build = time.perf_counter()
        policy = parse_policy(TEST_POLICY)
        bot = build_changebot(settings, policy, pace=timedelta(0))
        web_app = bot.web
        store = bot.context.dispatcher._store

        async def outbox(_request: web.Request) -> web.Response:
            return web.json_response(await store.counts())

        web_app.router.add_get("/bench/outbox", outbox)
        _count_sql(bot.engine, sql)
    else:
        from slack_bolt.async_app import AsyncAck, AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        timings["import_s"] = time.perf_counter() - t_import
        config = json.loads(Path(args.config).read_text())
        modal = config["modal"]
        card = config["card"]
        t_build = time.perf_counter()
        client = AsyncWebClient(token=TOKEN, base_url=args.emulator, retry_handlers=[])
        bolt = AsyncApp(client=client, signing_secret=SECRET, raise_error_for_unhandled_request=False)
        stored: dict[int, Any] = {}
        serial = itertools.count(1)

        @bolt.command("/change")
        async def change_command(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            await client.views_open(trigger_id=body["trigger_id"], view=modal)

        @bolt.action("change_approve")
        async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            container = body["container"]
            value = body["actions"][0]["value"]
            await client.chat_postEphemeral(
                channel=container["channel_id"], user=body["user"]["id"], text="Your approval is recorded."
            )
            await client.chat_update(
                channel=container["channel_id"],
                ts=container["message_ts"],
                text=f"{value}: approved",
                blocks=card,
            )

        @bolt.view("change_new")
        async def submit(
            ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
        ) -> None:
            number = next(serial)
            requester = body["user"]["id"]
            stored[number] = {"user": requester, "values": view["state"]["values"]}
            await ack()
            # The Slack calls changebot makes for a filed CR: the card in #changes, the
            # "filed" DM to the requester, the card to each eligible approver.
            await client.chat_postMessage(channel=CHANGES, text=f"CR {number}", blocks=card)
            await client.chat_postMessage(channel=requester, text=f"CR {number} is filed.")
            for lead in LEADS:
                await client.chat_postMessage(channel=lead, text=f"CR {number}", blocks=card)

        web_app = bolt.web_app(path="/slack/events")

        async def healthz(_request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        web_app.router.add_get("/healthz", healthz)
        bot = None

    async def stats(request: web.Request) -> web.Response:
        if request.query.get("peek"):  # the load process brackets its window with these
            return web.json_response(_rusage())
        action = request.query.get("profile")
        out: dict[str, Any] = {
            **_rusage(),
            "loop_lag": lag.take(),
            "gc": gc_pauses.take(),
            "sql": dict(sql),
        }
        if action == "start":
            profiling.start(request.query.get("name", "profile"))
        elif action == "stop":
            out["profile"] = profiling.stop()
            out["profiler"] = profiling.kind
        return web.json_response(out)

    web_app.router.add_get("/bench/stats", stats)
    # As `changebot serve` does: listen, then start the bot (scheduler, catch-up pass).
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    if bot is not None:
        await bot.start()

    port = int(runner.addresses[0][1])
    deadline = time.monotonic() + 60
    async with ClientSession() as http:
        while True:
            if time.monotonic() > deadline:
                raise SystemExit(f"{args.kind}: /healthz not 200 after 60 s")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            await asyncio.sleep(0.005)
    timings["startup_s"] = time.perf_counter() - t_build

    lag.start()
    print("READY " + json.dumps({"port": port, **timings, **_rusage()}), flush=True)
    await _stdin_closed()
    final = {**_rusage(), "warnings": warnings, "warning_count": sum(warnings.values())}
    await runner.cleanup()
    if bot is not None:
        await bot.stop()
    print("FINAL " + json.dumps(final), flush=True)


# =========================================================================== load role


async def load_role(args: argparse.Namespace) -> None:
    """Send the prepared bodies with `concurrency` closed-loop clients; write the results."""
    import aiohttp

    from tooling.slack_payloads import sign

    spec = json.loads(Path(args.spec).read_text())
    bodies = [b.encode() for b in spec["bodies"]]
    url = spec["url"]
    concurrency = int(spec["concurrency"])
    results: list[Any] = [None] * len(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Open the connections first (Slack keeps them alive too), outside the timing.
        async def touch() -> None:
            async with session.get(url.replace("/slack/events", "/healthz")) as r:
                await r.read()

        await asyncio.gather(*(touch() for _ in range(concurrency)))
        indexes = iter(range(len(bodies)))

        async def client() -> None:
            for i in indexes:
                body = bodies[i]
                headers = {"Content-Type": FORM, **sign(body, int(time.time()), SECRET)}
                t0 = time.monotonic()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        text = await response.read()
                        status = response.status
                except Exception as exc:  # a failed request is a result, not a crash
                    text, status = repr(exc).encode(), -1
                results[i] = [t0, time.monotonic() - t0, status, text[:300].decode("utf-8", "replace")]

        stats_url = url.replace("/slack/events", "/bench/stats?peek=1")
        async with session.get(stats_url) as r:
            server0 = (await r.json())["cpu_s"]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        machine0 = _machine_busy_s()
        t_start = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        t_end = time.monotonic()
        machine1 = _machine_busy_s()
        async with session.get(stats_url) as r:
            server1 = (await r.json())["cpu_s"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(args.out).write_text(
        json.dumps(
            {
                "start": t_start,
                "end": t_end,
                "results": results,
                "cpu_s": usage.ru_utime + usage.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
                "machine_busy_s": machine1 - machine0,
                "server_cpu_s": server1 - server0,
            }
        )
    )


# =========================================================================== orchestrator


class Server:
    """A server child process (changebot or bare Bolt)."""

    def __init__(
        self, kind: str, proc: asyncio.subprocess.Process, ready: dict[str, Any], spawn_s: float
    ) -> None:
        self.kind = kind
        self.proc = proc
        self.ready = ready
        self.spawn_s = spawn_s
        self.url = f"http://127.0.0.1:{ready['port']}"
        self.final: dict[str, Any] = {}

    @classmethod
    async def start(
        cls,
        kind: str,
        *,
        emulator: str,
        database: str = "",
        migrate: bool = False,
        config: Path | None = None,
        work: Path,
        tag: str,
    ) -> Server:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--role",
            "server",
            "--kind",
            kind,
            "--emulator",
            emulator,
            "--database",
            database,
            "--out-dir",
            str(work),
        ]
        if migrate:
            argv.append("--migrate")
        if config is not None:
            argv += ["--config", str(config)]
        log = (work / f"{tag}.log").open("w")
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=str(ROOT),
        )
        assert proc.stdout is not None
        try:
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
                if not line:
                    raise RuntimeError(f"{kind} server died at start-up; see {work / (tag + '.log')}")
                if line.startswith(b"READY "):
                    ready = json.loads(line[6:])
                    break
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        return cls(kind, proc, ready, time.perf_counter() - t0)

    async def get(self, path: str) -> Any:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            return await response.json()

    async def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
                if not line:
                    break
                if line.startswith(b"FINAL "):
                    self.final = json.loads(line[6:])
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        return self.final


async def run_load(url: str, bodies: list[bytes], concurrency: int, work: Path, tag: str) -> dict[str, Any]:
    spec = work / f"{tag}.spec.json"
    out = work / f"{tag}.out.json"
    spec.write_text(
        json.dumps({"url": url, "concurrency": concurrency, "bodies": [b.decode() for b in bodies]})
    )
    main_cpu0 = _rusage()["cpu_s"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        "load",
        "--spec",
        str(spec),
        "--out",
        str(out),
        cwd=str(ROOT),
    )
    code = await proc.wait()
    main_cpu = _rusage()["cpu_s"] - main_cpu0
    if code != 0:
        raise RuntimeError(f"load generator failed ({code}) for {tag}")
    data = json.loads(out.read_text())
    data["main_cpu_s"] = main_cpu
    spec.unlink()
    out.unlink()
    return data


# --------------------------------------------------------------------------- bodies


class Bodies:
    """Signed-request bodies shaped like Slack's, from tooling/slack_payloads.py."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag
        self.serial = itertools.count(1)
        self.form_blocks: list[Any] = []  # the CR modal's blocks, sent back in view_submission
        self.card_blocks: list[Any] = []  # a card's blocks, sent back in block_actions

    def trigger(self, user: str) -> str:
        from tooling.slack_payloads import trigger_id

        return trigger_id(user, next(self.serial)) + f"-{self.run_tag}"

    def command(self, user: str) -> tuple[bytes, str]:
        from tooling.slack_payloads import command_body

        trigger = self.trigger(user)
        return command_body("new", user=user, trigger=trigger), trigger

    def click(self, change_id: str, user: str, channel: str, message_ts: str) -> bytes:
        from tooling.slack_payloads import block_action, interaction_body

        payload = block_action(
            "change_approve",
            change_id,
            user=user,
            trigger=self.trigger(user),
            action_ts=f"{time.time():.6f}",
            channel=channel,
            message_ts=message_ts,
        )
        payload["message"]["blocks"] = self.card_blocks
        return interaction_body(payload)

    def submission(self, title: str, user: str, start: datetime) -> bytes:
        from tooling.slack_payloads import change_form_state, interaction_body, view_submission

        begins = int(start.timestamp())
        state = change_form_state(
            title=title,
            category="normal",
            impact="medium",
            likelihood="medium",
            services=["api-server"],
            starts_at=begins,
            ends_at=begins + 3600,
            description="Roll out gateway 2.4 with the new TLS ciphers.",
            rollback_plan="Redeploy 2.3 from the previous release tag.",
            implementation_plan="Blue/green switch behind the load balancer.",
        )
        payload = view_submission(
            "change_new", state, user=user, trigger=self.trigger(user), view_blocks=self.form_blocks
        )
        return interaction_body(payload)


# --------------------------------------------------------------------------- phases


def analyse(name: str, data: dict[str, Any]) -> dict[str, Any]:
    results = data["results"]
    latencies = [r[1] for r in results]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
    wall = data["end"] - data["start"]
    return {
        "phase": name,
        "latency": summary(latencies),
        "over_3s": sum(1 for v in latencies if v > SLOW_SECONDS),
        "statuses": statuses,
        "wall_s": wall,
        "per_s": len(results) / wall if wall > 0 else float("nan"),
        # Where the tail sits: (seconds into the phase the request was sent, ms it took).
        "slowest": [
            [round(r[0] - data["start"], 3), round(1000 * r[1], 1)]
            for r in sorted(results, key=lambda r: -r[1])[:5]
        ],
    }


async def settle_outbox(server: Server, timeout: float = 300) -> float:
    """Seconds until the changebot outbox has nothing pending or sending."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        counts = await server.get("/bench/outbox")
        if not counts.get("pending") and not counts.get("sending"):
            return time.monotonic() - t0
        await asyncio.sleep(0.1)
    raise RuntimeError(f"outbox did not settle in {timeout}s: {counts}")


async def settle_clicks(server: Server, emulator: Any, ids: Sequence[str], since: float) -> float:
    """Approvals are stored after the ack, so an empty outbox right after the last ack
    proves nothing: first wait until every clicked CR's channel card was updated, then
    until the outbox is empty. Seconds taken."""
    t0 = time.monotonic()
    deadline = t0 + 300
    while time.monotonic() < deadline:
        updated = _first_calls(emulator, "chat.update", CHANGES, after=since)
        if all(cid in updated for cid in ids):
            break
        await asyncio.sleep(0.1)
    await settle_outbox(server)
    return time.monotonic() - t0


async def wait_calls(
    emulator: Any, method: str, count: int, predicate: Any = None, timeout: float = 120
) -> None:
    """Until `count` matching calls arrived (or the timeout). Scans only new calls, every
    50 ms, so the waiting costs the emulator's process (and the servers) next to nothing."""
    seen, found, deadline = 0, 0, time.monotonic() + timeout
    while found < count and time.monotonic() < deadline:
        calls = emulator.calls
        for call in calls[seen:]:
            if call.method == method and (predicate is None or predicate(call)):
                found += 1
        seen = len(calls)
        if found < count:
            await asyncio.sleep(0.05)


async def measured(
    server: Server,
    name: str,
    bodies: list[bytes],
    args: argparse.Namespace,
    work: Path,
    profile: bool = False,
) -> dict[str, Any]:
    before = await server.get(
        "/bench/stats" + (f"?profile=start&name={server.kind}-{name}" if profile else "")
    )
    data = await run_load(
        server.url + "/slack/events", bodies, args.concurrency, work, f"{server.kind}-{name}"
    )
    # --profile-acks: the profile covers the acks only, not the follow-up work after them.
    acks_only = profile and args.profile_acks
    after = await server.get("/bench/stats" + ("?profile=stop" if acks_only else ""))
    result = analyse(name, data)
    # The emulator's process idles while the load process starts, so its CPU is all Slack API work.
    result["emulator_cpu_util"] = data["main_cpu_s"] / result["wall_s"]
    result["machine_cpu_util"] = data["machine_busy_s"] / result["wall_s"]
    result["client_cpu_util"] = data["cpu_s"] / result["wall_s"]
    result["server_cpu_ms_per_req"] = 1000 * data["server_cpu_s"] / max(1, len(bodies))
    result["server_cpu_util"] = data["server_cpu_s"] / result["wall_s"]
    result["loop_lag"] = after["loop_lag"]
    result["gc"] = after["gc"]
    result["rss_mb"] = after["rss_mb"]
    result["_cpu0"] = before["cpu_s"]
    result["_sql0"] = before.get("sql") or {}
    if result["_sql0"]:
        result["sql_during_acks"] = _sql_delta(result["_sql0"], after["sql"], len(bodies))
    result["_profiling"] = profile and not acks_only
    if acks_only:
        result["profile"] = after.get("profile")
        result["profiler"] = after.get("profiler")
    result["_raw"] = data
    return result


def _sql_delta(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, Any]:
    d = {k: after[k] - before.get(k, 0.0) for k in after if k != "begin_max_s"}
    n = max(1, count)
    slowest = sorted((k for k in d if k.startswith("sql ")), key=lambda k: -d[k])[:4]
    return {
        "slowest": [
            {"statement": k[4:], "ms_per_req": 1000 * d[k] / n, "ms_each": 1000 * d[k] / max(1, d["n " + k])}
            for k in slowest
        ],
        "statements_per_req": d["statements"] / n,
        "statement_ms_per_req": 1000 * d["statement_s"] / n,
        "statement_ms_mean": 1000 * d["statement_s"] / max(1, d["statements"]),
        "transactions_per_req": d["begins"] / n,
        "begin_ms_mean": 1000 * d["begin_s"] / max(1, d["begins"]),
    }


async def follow_up_done(server: Server, result: dict[str, Any], count: int) -> None:
    """After the follow-up work is done: its CPU per interaction; stop the profiler."""
    after = await server.get("/bench/stats" + ("?profile=stop" if result["_profiling"] else ""))
    result["server_cpu_ms_per_req_total"] = 1000 * (after["cpu_s"] - result["_cpu0"]) / max(1, count)
    # Interactions per second including the follow-up work (modal opened, cards posted or
    # updated, outbox drained): from the first send to now.
    result["completed_per_s"] = count / (time.monotonic() - result["_raw"]["start"])
    if result["_sql0"]:
        result["sql_total"] = _sql_delta(result["_sql0"], after["sql"], count)
    if result["_profiling"]:
        result["profile"] = after.get("profile")
        result["profiler"] = after.get("profiler")


async def bench_database(db: str, args: argparse.Namespace, emulator: Any, work: Path) -> dict[str, Any]:
    from storage.migrate import upgrade  # noqa: F401  (import check before spawning)

    pg = None
    if db == "sqlite":
        url = f"sqlite+aiosqlite:///{work / 'changebot.db'}"
    else:
        from tests.support.pg_server import ThrowawayPostgres

        pg = ThrowawayPostgres().start()
        pg.create_database("bench")
        url = pg.url("bench")
    out: dict[str, Any] = {"db": db}
    bodies = Bodies(db)
    n, w = args.requests, args.warmup
    servers: list[Server] = []
    try:
        print(f"[{db}] starting changebot (migrating an empty database first)", flush=True)
        cb = await Server.start(
            "changebot",
            emulator=emulator.base_url,
            database=url,
            migrate=True,
            work=work,
            tag=f"{db}-changebot",
        )
        servers.append(cb)
        out["startup"] = {"changebot": {**cb.ready, "spawn_to_ready_s": cb.spawn_s}}

        # Windows never overlap (no conflict warning); far enough ahead that no notice is due.
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        window = itertools.count()
        engineers = itertools.cycle([f"UENG{i:03d}" for i in range(100)])

        def submissions(count: int, label: str) -> tuple[list[bytes], list[str]]:
            titles = [f"bench {db} {label} {i:05d}" for i in range(count)]
            return (
                [
                    bodies.submission(t, next(engineers), base + timedelta(hours=2 * next(window)))
                    for t in titles
                ],
                titles,
            )

        def commands(count: int) -> tuple[list[bytes], list[str]]:
            made = [bodies.command(next(engineers)) for _ in range(count)]
            return [b for b, _ in made], [t for _, t in made]

        def card_ids(titles: list[str]) -> dict[str, str]:
            """title -> CR id, from the channel cards the emulator received."""
            wanted = set(titles)
            found: dict[str, str] = {}
            for call in emulator.calls_to("chat.postMessage"):
                if call.params.get("channel") != CHANGES:
                    continue
                text = str(call.params.get("text") or "")
                match = CR_ID.match(text)
                title = text.split(": ", 1)[1].rsplit(" (", 1)[0] if ": " in text else ""
                if match and title in wanted:
                    found[title] = match.group(0)
            return found

        def clicks(ids: list[str]) -> list[bytes]:
            return [bodies.click(cid, LEADS[i % 2], CHANGES, "1.0") for i, cid in enumerate(ids)]

        # ---- warm-up of every path (not measured); its CRs are created and approved
        print(f"[{db}] warm-up: {w} of each interaction", flush=True)
        cb_commands, _ = commands(w)
        await run_load(cb.url + "/slack/events", cb_commands, args.concurrency, work, "warm-cmd")
        sub_bodies, titles = submissions(w, "warm")
        bodies.form_blocks = emulator.calls_to("views.open")[-1].params["view"]["blocks"]
        await run_load(cb.url + "/slack/events", sub_bodies, args.concurrency, work, "warm-sub")
        await settle_outbox(cb)
        ids = card_ids(titles)
        since = time.monotonic()
        await run_load(
            cb.url + "/slack/events", clicks(list(ids.values())), args.concurrency, work, "warm-click"
        )
        await settle_clicks(cb, emulator, list(ids.values()), since)
        updates = [c for c in emulator.calls_to("chat.update") if c.params.get("channel") == CHANGES]
        if not updates:
            raise RuntimeError(
                "warm-up approvals produced no card update: is the bench in step with the bot?"
            )
        bodies.card_blocks = updates[-1].params["blocks"]
        modal = emulator.calls_to("views.open")[-1].params["view"]

        config = work / f"{db}-bare.json"
        config.write_text(json.dumps({"modal": modal, "card": bodies.card_blocks}))
        print(f"[{db}] starting bare Bolt", flush=True)
        bare = await Server.start(
            "bare", emulator=emulator.base_url, config=config, work=work, tag=f"{db}-bare"
        )
        servers.append(bare)
        out["startup"]["bare"] = {**bare.ready, "spawn_to_ready_s": bare.spawn_s}
        # Bare Bolt updates a message of its own in its own channel, one per click.
        bare_ts = [
            emulator.add_message(BARE_CHANNEL, "card", blocks=bodies.card_blocks)["ts"] for _ in range(n + w)
        ]
        bare_warm_cmd, _ = commands(w)
        await run_load(bare.url + "/slack/events", bare_warm_cmd, args.concurrency, work, "warm-bare-cmd")
        bare_sub, _ = submissions(w, "bare-warm")
        await run_load(bare.url + "/slack/events", bare_sub, args.concurrency, work, "warm-bare-sub")
        bare_clicks = [
            bodies.click(f"BARE-{i}", LEADS[i % 2], BARE_CHANNEL, ts) for i, ts in enumerate(bare_ts)
        ]
        await run_load(bare.url + "/slack/events", bare_clicks[:w], args.concurrency, work, "warm-bare-click")
        await wait_calls(emulator, "chat.update", 1, lambda c: c.params.get("channel") == BARE_CHANNEL, 30)

        phases: dict[str, dict[str, Any]] = {}

        # ---- (a) /change new: ack + views.open
        for server in (cb, bare):
            cmd_bodies, triggers = commands(n)
            print(f"[{db}] {server.kind}: {n} x /change new", flush=True)
            r = await measured(
                server, "command", cmd_bodies, args, work, profile=args.profile and server.kind == "changebot"
            )
            wanted = set(triggers)
            await wait_calls(
                emulator,
                "views.open",
                len(wanted),
                lambda c, wanted=wanted: c.params.get("trigger_id") in wanted,
                60,
            )
            opened = {
                c.params["trigger_id"]: c.at
                for c in emulator.calls_to("views.open")
                if c.params.get("trigger_id") in wanted
            }
            sends = {t: res[0] for t, res in zip(triggers, r["_raw"]["results"], strict=True)}
            r["followup"] = {
                "what": "views.open received by Slack, from the request's send",
                "done": len(opened),
                "expected": len(wanted),
                "latency": summary([opened[t] - sends[t] for t in opened]),
                "over_3s": sum(1 for t in opened if opened[t] - sends[t] > SLOW_SECONDS)
                + (len(wanted) - len(opened)),
            }
            await follow_up_done(server, r, n)
            phases.setdefault("command", {})[server.kind] = r

        # ---- (c) CR form submission: validated and stored before the ack
        sub_bodies, titles = submissions(n, "measured")
        print(f"[{db}] changebot: {n} x CR form submission", flush=True)
        r = await measured(cb, "submit", sub_bodies, args, work, profile=args.profile)
        r["answers"] = _answers(r["_raw"]["results"])
        r["settle_s"] = await settle_outbox(cb)
        # A listener Bolt gave up on (404 after 3 s) may still be storing its CR: give it time.
        straggle = time.monotonic() + 15
        while len(card_ids(titles)) < n and time.monotonic() < straggle:
            await asyncio.sleep(0.2)
            await settle_outbox(cb)
        ids = card_ids(titles)
        sends = {t: res[0] for t, res in zip(titles, r["_raw"]["results"], strict=True)}
        # A submission Bolt answered 404 (its 3 s ack timeout) shows the person an error,
        # yet the listener went on: was the CR stored all the same?
        r["failed_but_stored"] = sum(
            1 for t, res in zip(titles, r["_raw"]["results"], strict=True) if res[2] != 200 and t in ids
        )
        posted = _first_calls(emulator, "chat.postMessage", CHANGES)
        r["followup"] = {
            "what": "CR card posted to #changes, from the submission's send",
            "done": len(ids),
            "expected": n,
            "latency": summary([posted[cid] - sends[t] for t, cid in ids.items() if cid in posted]),
        }
        await follow_up_done(cb, r, n)
        phases.setdefault("submit", {})["changebot"] = r
        bare_sub, _ = submissions(n, "bare")
        print(f"[{db}] bare: {n} x CR form submission", flush=True)
        r = await measured(bare, "submit", bare_sub, args, work)
        r["answers"] = _answers(r["_raw"]["results"])
        await follow_up_done(bare, r, n)
        phases["submit"]["bare"] = r

        # ---- (b) Approve click: ack, then decision stored + card updates through the outbox
        approve_ids = [ids[t] for t in titles if t in ids]
        print(f"[{db}] changebot: {len(approve_ids)} x Approve", flush=True)
        r = await measured(cb, "click", clicks(approve_ids), args, work, profile=args.profile)
        r["settle_s"] = await settle_clicks(cb, emulator, approve_ids, r["_raw"]["start"])
        sends = {cid: res[0] for cid, res in zip(approve_ids, r["_raw"]["results"], strict=True)}
        updated = _first_calls(emulator, "chat.update", CHANGES, after=min(sends.values()))
        r["followup"] = {
            "what": "channel card updated (chat.update in #changes), from the click's send",
            "done": sum(1 for cid in sends if cid in updated),
            "expected": len(sends),
            "latency": summary([updated[cid] - sends[cid] for cid in sends if cid in updated]),
        }
        r["ephemeral_refusals"] = sum(
            1
            for e in emulator.ephemeral_messages
            if e["channel"] == CHANGES and "Not recorded" in str(e["text"])
        )
        await follow_up_done(cb, r, len(approve_ids))
        phases.setdefault("click", {})["changebot"] = r
        print(f"[{db}] bare: {n} x Approve", flush=True)
        r = await measured(bare, "click", bare_clicks[w:], args, work)
        targets = set(bare_ts[w:])
        await wait_calls(emulator, "chat.update", n, lambda c, t=targets: c.params.get("ts") in t, 60)
        sends = {ts: res[0] for ts, res in zip(bare_ts[w:], r["_raw"]["results"], strict=True)}
        done = {
            c.params["ts"]: c.at for c in emulator.calls_to("chat.update") if c.params.get("ts") in targets
        }
        r["followup"] = {
            "what": "card updated (chat.update), from the click's send",
            "done": len(done),
            "expected": n,
            "latency": summary([done[t] - sends[t] for t in done]),
        }
        await follow_up_done(bare, r, n)
        phases["click"]["bare"] = r
        out["phases"] = phases

        # ---- stop; then a restart of changebot on the now populated database
        for server in servers:
            await server.stop()
        out["final"] = {s.kind: s.final for s in servers}
        servers = []
        print(f"[{db}] restarting changebot on the populated database", flush=True)
        again = await Server.start(
            "changebot",
            emulator=emulator.base_url,
            database=url,
            migrate=True,
            work=work,
            tag=f"{db}-restart",
        )
        servers.append(again)
        out["startup"]["changebot_restart"] = {**again.ready, "spawn_to_ready_s": again.spawn_s}
        await again.stop()
        servers = []
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                await server.stop()
        if pg is not None:
            pg.stop()
    return out


def _answers(results: list[Any]) -> dict[str, int]:
    """What the submission acks said: stored (empty ack), errors, update (conflict warning)."""
    out: dict[str, int] = {}
    for r in results:
        text = r[3]
        if r[2] != 200:
            key = f"http {r[2]}"
        elif not text:
            key = "stored"
        else:
            try:
                key = str(json.loads(text).get("response_action", "other"))
            except ValueError:
                key = "other"
        out[key] = out.get(key, 0) + 1
    return out


def _first_calls(emulator: Any, method: str, channel: str, after: float = 0.0) -> dict[str, float]:
    """CR id -> when the emulator first received `method` for it in `channel`."""
    first: dict[str, float] = {}
    for call in emulator.calls_to(method):
        if call.params.get("channel") != channel or call.at < after:
            continue
        match = CR_ID.match(str(call.params.get("text") or ""))
        if match and match.group(0) not in first:
            first[match.group(0)] = call.at
    return first


# --------------------------------------------------------------------------- report


def report(results: list[dict[str, Any]], args: argparse.Namespace, elapsed: float) -> str:
    lines: list[str] = []
    add = lines.append
    add(
        f"machine: nproc={os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    add(
        f"command: python bench/bench_ack.py --db {args.db} --requests {args.requests} "
        f"--concurrency {args.concurrency} --warmup {args.warmup}" + (" --profile" if args.profile else "")
    )
    add(f"total wall time: {elapsed:.0f}s; load average before the run: {args.loadavg}")
    names = {"command": "(a) /change new", "click": "(b) Approve click", "submit": "(c) CR form submit"}
    for res in results:
        db = res["db"]
        add("")
        add(f"== {db} ==")
        add(
            "| interaction | server | p50 ms | p90 ms | p99 ms | max ms | >3 s | non-200 | acks/s | done/s "
            "| server CPU ms/req: acks / incl. follow-up | CPU % server/emulator/client/machine "
            "| loop lag p99 ms |"
        )
        add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for key in ("command", "click", "submit"):
            for kind in ("changebot", "bare"):
                r = res["phases"][key][kind]
                lat = r["latency"]
                non_200 = sum(v for k, v in r["statuses"].items() if k != "200")
                nan = math.nan
                cpu = "/".join(
                    f"{100 * r[k]:.0f}"
                    for k in ("server_cpu_util", "emulator_cpu_util", "client_cpu_util", "machine_cpu_util")
                )
                cells = [
                    names[key],
                    kind,
                    *(ms(lat[p]) for p in ("p50", "p90", "p99", "max")),
                    str(r["over_3s"]),
                    str(non_200),
                    f"{r['per_s']:.0f}",
                    f"{r.get('completed_per_s', float('nan')):.0f}",
                    f"{r['server_cpu_ms_per_req']:.1f} / {r.get('server_cpu_ms_per_req_total', nan):.1f}",
                    cpu,
                    ms(r["loop_lag"].get("p99")),
                ]
                add("| " + " | ".join(cells) + " |")
        add("")
        add("| interaction | p50 changebot/bare | p99 changebot/bare | goal p99 <= 1.5x |")
        add("|---|---:|---:|---|")
        for key in ("command", "click", "submit"):
            c, b = res["phases"][key]["changebot"]["latency"], res["phases"][key]["bare"]["latency"]
            r50, r99 = c["p50"] / b["p50"], c["p99"] / b["p99"]
            add(f"| {names[key]} | {r50:.2f}x | {r99:.2f}x | {'met' if r99 <= 1.5 else 'MISSED'} |")
        add("")
        add("follow-up work (arrival at the Slack emulator, measured from the request's send):")
        for key in ("command", "click", "submit"):
            for kind in ("changebot", "bare"):
                f = res["phases"][key][kind].get("followup")
                if not f:
                    continue
                lat = f["latency"]
                add(
                    f"  {names[key]:20} {kind:9} {f['what']}: {f['done']}/{f['expected']}, "
                    f"p50 {ms(lat.get('p50'))} ms, p99 {ms(lat.get('p99'))} ms, max {ms(lat.get('max'))} ms"
                )
        for key in ("submit", "click"):
            r = res["phases"][key]["changebot"]
            add(
                f"  changebot {names[key]}: outbox drained {r['settle_s']:.2f}s after the last ack"
                + (
                    f"; answers {r['answers']}, failed but stored {r['failed_but_stored']}"
                    if "answers" in r
                    else ""
                )
                + (f"; refusals {r['ephemeral_refusals']}" if "ephemeral_refusals" in r else "")
            )
        add(f"  bare (c) answers: {res['phases']['submit']['bare']['answers']}")
        add("")
        add(
            "changebot database work per interaction "
            "(SQLAlchemy cursor events; BEGIN apart = SQLite write-lock wait):"
        )
        for key in ("command", "click", "submit"):
            r = res["phases"][key]["changebot"]
            for label, k in (("during the acks", "sql_during_acks"), ("incl. follow-up", "sql_total")):
                q = r.get(k)
                if q:
                    add(
                        f"  {names[key]:20} {label:16}: {q['statements_per_req']:.1f} statements "
                        f"({q['statement_ms_per_req']:.1f} ms, {q['statement_ms_mean']:.2f} ms each), "
                        f"{q['transactions_per_req']:.1f} transactions "
                        f"(BEGIN {q['begin_ms_mean']:.2f} ms each)"
                    )
                    add(
                        "      slowest: "
                        + "; ".join(
                            f"{x['statement']!r} {x['ms_per_req']:.1f} ms/req ({x['ms_each']:.1f} ms each)"
                            for x in q["slowest"][:3]
                        )
                    )
        add("")
        st = res["startup"]
        for kind in ("changebot", "bare", "changebot_restart"):
            s = st[kind]
            add(
                f"  start-up {kind:18}: build+start -> healthy {s['startup_s'] * 1000:.0f} ms"
                + (f", migrate {s['migrate_s'] * 1000:.0f} ms" if "migrate_s" in s else "")
                + f", imports {s['import_s'] * 1000:.0f} ms"
                + f", process spawn -> ready {s['spawn_to_ready_s'] * 1000:.0f} ms"
            )
        for kind, final in res["final"].items():
            add(
                f"  RSS {kind:9}: peak {final['maxrss_mb']:.0f} MB, at exit {final['rss_mb']:.0f} MB, "
                f"warnings logged {final['warning_count']}"
            )
            for w, count in sorted(final.get("warnings", {}).items(), key=lambda kv: -kv[1])[:6]:
                add(f"      {count:5d} x {w}")
        for key in ("command", "submit", "click"):
            prof = res["phases"][key]["changebot"].get("profile")
            if prof:
                add(
                    f"  profile of changebot {names[key]} "
                    f"({res['phases'][key]['changebot']['profiler']}): {prof}"
                )
    return "\n".join(lines)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


async def orchestrate(args: argparse.Namespace) -> None:
    from tooling.emulator import SlackEmulator

    t0 = time.monotonic()
    args.loadavg = " ".join(f"{v:.2f}" for v in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="changebot-bench-ack-"))
    emulator = SlackEmulator()
    emulator.usergroups["SMANAGERS"] = ["UMGR1", "UMGR2"]
    await emulator.start()
    results = []
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            try:
                results.append(await bench_database(db, args, emulator, work))
            except BaseException:
                print(f"\n{db} run failed; server logs kept in {work}", file=sys.stderr)
                raise
            emulator.reset_calls()
            emulator.channels.clear()
            emulator.ephemeral_messages.clear()
            emulator.views.clear()
    finally:
        await emulator.stop()
    text = report(results, args, time.monotonic() - t0)
    print()
    print(text)
    if args.profile:
        for path in sorted(work.glob("*-flat.txt")) + sorted(work.glob("*-cprofile.txt")):
            print(f"\n--- {path}\n" + path.read_text()[:12000])
    if args.json:
        Path(args.json).write_text(json.dumps(_strip(results), indent=1, default=str))
    if args.keep or args.profile:
        print(f"\nlogs and profiles kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=600, help="requests per interaction and server")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="profile changebot's phases (implies --keep)")
    parser.add_argument(
        "--profile-acks", action="store_true", help="with --profile: stop profiling at the last ack"
    )
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, profiles)")
    # internal roles
    parser.add_argument(
        "--role", choices=["orchestrate", "server", "load"], default="orchestrate", help=argparse.SUPPRESS
    )
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--migrate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        asyncio.run(serve_role(args))
    elif args.role == "load":
        asyncio.run(load_role(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
