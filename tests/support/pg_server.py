"""Throwaway PostgreSQL 15 server for the test suite.

Tests need a real PostgreSQL (asyncpg semantics, locking, CREATE DATABASE
templates) without depending on a system service, a fixed port or a password.
This module runs ``initdb``/``pg_ctl`` from the local server binaries into a
private temporary directory, on a free loopback port, with durability turned
off for speed, and removes everything again at teardown.

initdb refuses to run as root, so when the suite runs as root the binaries are
run as the ``postgres`` OS user via ``runuser``; otherwise as the current user.
Every subprocess call is bounded in time so a broken server cannot hang tests.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

__all__ = [
    "PostgresCommandError",
    "PostgresUnavailable",
    "ThrowawayPostgres",
    "find_pg_bin",
]

PG_BIN_ENV = "CHANGEBOT_PG_BIN"
DEFAULT_PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"

ShutdownMode = Literal["smart", "fast", "immediate"]

_LOG_TAIL_LINES = 40
_STOP_TIMEOUT = 15.0
_SQL_TIMEOUT = 30.0


class PostgresUnavailable(Exception):
    """No usable server could be started; tests should skip with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PostgresCommandError(RuntimeError):
    """A SQL admin command against a running throwaway server failed."""


def _pg_bin_candidate() -> Path:
    """Return the configured bin dir, so error messages can name it."""
    configured = os.environ.get(PG_BIN_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_PG_BIN


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_pg_bin() -> Path | None:
    """Locate the server bin dir (``$CHANGEBOT_PG_BIN`` or the PG 15 default).

    Returns ``None`` unless both ``initdb`` and ``pg_ctl`` are executable there,
    so callers can decide to skip instead of failing obscurely later.
    """
    candidate = _pg_bin_candidate()
    if all(_is_executable(candidate / name) for name in ("initdb", "pg_ctl")):
        return candidate
    return None


def _find_runuser() -> str | None:
    """Find ``runuser`` even when ``/usr/sbin`` is not on PATH."""
    found = shutil.which("runuser")
    if found:
        return found
    for path in ("/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"):
        if _is_executable(Path(path)):
            return path
    return None


def _free_loopback_port() -> int:
    """Ask the kernel for an unused port so parallel runs do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """Drop PG* variables so a developer's PGHOST/PGDATA cannot redirect us."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _quote_ident(name: str) -> str:
    """Quote an SQL identifier; database names come from test code."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid database name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _run(args: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in its own session and kill the whole group on timeout.

    A plain ``subprocess.run`` timeout would only kill ``runuser``, leaving
    its child (e.g. ``initdb``) running.
    """
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_clean_env(),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(args, timeout, out, err) from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _output(result: subprocess.CompletedProcess[str] | subprocess.TimeoutExpired) -> str:
    out = result.stdout or ""
    err = result.stderr or ""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    if isinstance(err, bytes):
        err = err.decode(errors="replace")
    return (out + err).strip()


class ThrowawayPostgres:
    """A private PostgreSQL server living in a temp dir for one test session.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  The
    superuser is ``postgres`` with trust auth on loopback, so URLs carry no
    password.
    """

    host: str = LOOPBACK

    def __init__(self, bin_dir: Path | None = None, *, start_timeout: float = 30.0) -> None:
        self._bin_dir_override = bin_dir
        self.start_timeout = start_timeout
        self.port: int = 0
        self.base_dir: Path | None = None
        self._bin_dir: Path | None = None
        self._as_postgres = False
        self._runuser: str | None = None
        self._running = False

    # ------------------------------------------------------------------ paths

    @property
    def data_dir(self) -> Path:
        return self._require_base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._require_base() / "sock"

    @property
    def log_path(self) -> Path:
        return self._require_base() / "server.log"

    @property
    def running(self) -> bool:
        return self._running

    def _require_base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("ThrowawayPostgres has not been started")
        return self.base_dir

    def _bin(self, name: str) -> str:
        if self._bin_dir is None:
            raise RuntimeError("ThrowawayPostgres has not been started")
        return str(self._bin_dir / name)

    # -------------------------------------------------------------- lifecycle

    def start(self) -> ThrowawayPostgres:
        """Create a fresh cluster and start it; raise PostgresUnavailable if impossible."""
        if self._running:
            return self
        deadline = time.monotonic() + self.start_timeout
        self._prepare_environment()
        try:
            self._initdb(deadline)
            self.port = _free_loopback_port()
            self._pg_ctl_start(deadline)
        except BaseException:
            self._teardown()
            raise
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server immediately and delete its directory (idempotent)."""
        atexit.unregister(self.stop)
        self._teardown()

    def halt(self, mode: ShutdownMode = "fast") -> None:
        """Stop the server but keep data dir and port, for outage/fault tests."""
        self._require_base()
        self._pg_ctl_stop(mode)

    def resume(self) -> None:
        """Start a halted server again on the same port with the same data."""
        self._require_base()
        if self._running:
            return
        self._pg_ctl_start(time.monotonic() + self.start_timeout)

    def restart(self, mode: ShutdownMode = "fast") -> None:
        """Stop (``fast`` by default) then start again on the same port.

        ``mode="immediate"`` simulates a crash: the next start runs recovery.
        """
        self.halt(mode)
        self.resume()

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- helpers

    def url(self, database: str = "postgres", driver: str | None = "asyncpg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:PORT/DB``.

        ``driver=None`` (or ``""``) yields a plain ``postgresql://`` DSN that
        ``asyncpg.connect`` and libpq accept.
        """
        if not self.port:
            raise RuntimeError("ThrowawayPostgres has not been started")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{PG_SUPERUSER}@{self.host}:{self.port}/{quote(database, safe='')}"

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE (optionally from a template, e.g. a migrated schema).

        PostgreSQL refuses to copy a template that has open connections, so
        dispose engines/pools on the template first.
        """
        sql = f"CREATE DATABASE {_quote_ident(name)}"
        if template is not None:
            sql += f" TEMPLATE {_quote_ident(template)}"
        self.execute_admin(sql)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE), so leaked connections don't block it."""
        self.execute_admin(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def execute_admin(self, sql: str) -> None:
        """Run one statement in autocommit on ``postgres`` (CREATE DATABASE can't be in a tx).

        Uses ``psql`` when available (no event loop involved, safe to call
        from async tests); otherwise asyncpg in a fresh loop on a worker thread.
        """
        if not self._running:
            raise RuntimeError("ThrowawayPostgres is not running")
        psql = self._bin_dir / "psql" if self._bin_dir else None
        if psql is not None and _is_executable(psql):
            self._execute_psql(str(psql), sql)
        else:
            self._execute_asyncpg(sql)

    # -------------------------------------------------------------- internals

    def _prepare_environment(self) -> None:
        """Resolve binaries and OS user, then create the private temp dir."""
        bin_dir = self._bin_dir_override or find_pg_bin()
        if bin_dir is None or not all(_is_executable(bin_dir / n) for n in ("initdb", "pg_ctl")):
            where = bin_dir or _pg_bin_candidate()
            raise PostgresUnavailable(
                f"PostgreSQL server binaries not found: {where} lacks executable "
                f"initdb/pg_ctl (set ${PG_BIN_ENV} to the bin dir of PostgreSQL 15)"
            )
        self._bin_dir = bin_dir

        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._runuser = _find_runuser()
            if self._runuser is None:
                raise PostgresUnavailable("running as root, initdb refuses root and `runuser` was not found")
            try:
                owner = pwd.getpwnam(PG_OS_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, initdb refuses root and OS user {PG_OS_USER!r} does not exist"
                ) from None
            self._as_postgres = True

        base = Path(tempfile.mkdtemp(prefix="changebot-pg-", dir="/tmp"))
        self.base_dir = base
        try:
            (base / "sock").mkdir(mode=0o700)
            if owner is not None:
                for path in (base, base / "sock"):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            os.chmod(base, 0o700)
            if self._as_postgres:
                probe = self._run_as_owner(
                    ["/bin/sh", "-c", 'test -x "$0" && test -w "$0"', str(base)],
                    timeout=10,
                )
                if probe.returncode != 0:
                    raise PostgresUnavailable(
                        f"OS user {PG_OS_USER!r} cannot traverse/write {base}: "
                        f"{_output(probe) or 'permission denied'}"
                    )
        except BaseException:
            self._teardown()
            raise

    def _run_as_owner(self, args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster owner, from a dir that user can read."""
        if self._as_postgres:
            assert self._runuser is not None
            args = [self._runuser, "-u", PG_OS_USER, "--", *args]
        return _run(args, timeout=timeout, cwd=self.base_dir)

    def _initdb(self, deadline: float) -> None:
        args = [
            self._bin("initdb"),
            "-D", str(self.data_dir),
            "-A", "trust",
            "-U", PG_SUPERUSER,
            "-E", "UTF8",
            "--no-locale",
            "--no-sync",
        ]  # fmt: skip
        try:
            result = self._run_as_owner(args, timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise PostgresUnavailable(f"initdb timed out after {exc.timeout:.0f}s: {_output(exc)}") from None
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}): {_output(result)}")

    def _server_options(self) -> str:
        return (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={LOOPBACK} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )

    def _pg_ctl_start(self, deadline: float) -> None:
        wait = max(1, int(deadline - time.monotonic()))
        args = [
            self._bin("pg_ctl"),
            "-D", str(self.data_dir),
            "-l", str(self.log_path),
            "-o", self._server_options(),
            "-w", "-t", str(wait),
            "start",
        ]  # fmt: skip
        try:
            result = self._run_as_owner(args, timeout=wait + 5)
        except subprocess.TimeoutExpired as exc:
            self._running = True  # postmaster may be up; make teardown stop it
            raise PostgresUnavailable(
                f"pg_ctl start timed out after {exc.timeout:.0f}s on port {self.port}: "
                f"{_output(exc)}\n--- server log tail ---\n{self._log_tail()}"
            ) from None
        if result.returncode != 0:
            self._running = True  # pg_ctl -w can fail while the postmaster lingers
            raise PostgresUnavailable(
                f"PostgreSQL failed to start on {LOOPBACK}:{self.port} "
                f"(pg_ctl exit {result.returncode}): {_output(result)}\n"
                f"--- server log tail ({self.log_path}) ---\n{self._log_tail()}"
            )
        self._running = True

    def _pg_ctl_stop(self, mode: ShutdownMode) -> None:
        """Stop via pg_ctl; fall back to signalling the postmaster we started."""
        if not self._running:
            return
        args = [
            self._bin("pg_ctl"),
            "-D", str(self.data_dir),
            "-m", mode,
            "-w", "-t", str(int(_STOP_TIMEOUT)),
            "stop",
        ]  # fmt: skip
        try:
            result = self._run_as_owner(args, timeout=_STOP_TIMEOUT + 5)
            stopped = result.returncode == 0
        except subprocess.TimeoutExpired:
            stopped = False
        if not stopped:
            self._kill_postmaster()
        self._running = False

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, ValueError, IndexError):
            return None

    def _kill_postmaster(self) -> None:
        """SIGQUIT (immediate shutdown), then SIGKILL, the postmaster of our cluster."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:  # a stale pid file must never make us signal an unrelated process
            if Path(f"/proc/{pid}/cwd").resolve() != self.data_dir.resolve():
                return
        except OSError:
            return
        for sig, grace in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            end = time.monotonic() + grace
            while time.monotonic() < end:
                try:
                    os.kill(pid, 0)
                except (ProcessLookupError, PermissionError):
                    return
                time.sleep(0.05)

    def _teardown(self) -> None:
        if self.base_dir is None:
            return
        try:
            self._pg_ctl_stop("immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
            self.port = 0
            self._running = False

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"<no server log: {exc}>"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "<server log empty>"

    def _execute_psql(self, psql: str, sql: str) -> None:
        args = [
            psql, "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port),
            "-U", PG_SUPERUSER, "-d", "postgres",
            "-c", sql,
        ]  # fmt: skip
        try:
            result = _run(args, timeout=_SQL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise PostgresCommandError(
                f"psql timed out after {exc.timeout:.0f}s running {sql!r}: {_output(exc)}"
            ) from None
        if result.returncode != 0:
            raise PostgresCommandError(f"{sql!r} failed: {_output(result)}")

    def _execute_asyncpg(self, sql: str) -> None:
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(
                host=self.host, port=self.port, user=PG_SUPERUSER,
                database="postgres", timeout=10,
            )  # fmt: skip
            try:
                await conn.execute(sql)
            finally:
                await conn.close(timeout=5)

        def in_fresh_loop() -> None:
            asyncio.run(asyncio.wait_for(run(), _SQL_TIMEOUT))

        # A worker thread keeps this usable from inside a running event loop.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            pool.submit(in_fresh_loop).result(timeout=_SQL_TIMEOUT + 5)
        except Exception as exc:
            raise PostgresCommandError(f"{sql!r} failed: {exc!r}") from exc
        finally:
            pool.shutdown(wait=False)
