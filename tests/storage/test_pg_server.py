"""Tests for the throwaway PostgreSQL helper that DB-backed tests build on.

They start real servers; if none can be started they skip with a loud reason
rather than fail, but on a machine with PostgreSQL 15 they must really run.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import pg_server
from tests.support.pg_server import (
    PostgresCommandError,
    PostgresUnavailable,
    ThrowawayPostgres,
    find_pg_bin,
)

pytestmark = pytest.mark.postgres


def _start_or_skip(pg: ThrowawayPostgres) -> ThrowawayPostgres:
    """Start the server, or skip loudly so a silent skip can't hide lost coverage."""
    try:
        return pg.start()
    except PostgresUnavailable as exc:
        banner = f"\n{'!' * 72}\nPOSTGRES UNAVAILABLE, SKIPPING: {exc.reason}\n{'!' * 72}\n"
        print(banner, file=sys.stderr)
        pytest.skip(f"PostgreSQL unavailable: {exc.reason}")


@pytest.fixture(scope="module")
def shared_pg() -> Iterator[ThrowawayPostgres]:
    """One server for the read-mostly tests, to keep the module fast."""
    pg = _start_or_skip(ThrowawayPostgres())
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def own_pg() -> Iterator[ThrowawayPostgres]:
    """A private server for tests that restart or stop it."""
    pg = _start_or_skip(ThrowawayPostgres())
    try:
        yield pg
    finally:
        pg.stop()


async def _fetchval(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_url_shape(shared_pg: ThrowawayPostgres) -> None:
    port = shared_pg.port
    assert shared_pg.host == "127.0.0.1"
    assert shared_pg.url("db1") == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/db1"
    assert shared_pg.url() == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    assert shared_pg.url("db1", driver=None) == f"postgresql://postgres@127.0.0.1:{port}/db1"


def test_create_connect_and_template(shared_pg: ThrowawayPostgres) -> None:
    shared_pg.create_database("tmpl")
    dsn = shared_pg.url("tmpl", driver=None)
    assert asyncio.run(_fetchval(dsn, "SELECT 1")) == 1
    asyncio.run(_execute(dsn, "CREATE TABLE t (id int primary key)", "INSERT INTO t VALUES (42)"))

    shared_pg.create_database("clone", template="tmpl")
    clone = shared_pg.url("clone", driver=None)
    assert asyncio.run(_fetchval(clone, "SELECT id FROM t")) == 42

    with pytest.raises(PostgresCommandError, match="already exists"):
        shared_pg.create_database("clone")

    shared_pg.drop_database("clone")
    shared_pg.drop_database("clone")  # IF EXISTS: idempotent
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        asyncio.run(_fetchval(clone, "SELECT 1"))
    shared_pg.drop_database("tmpl")


def test_sqlalchemy_url_works(shared_pg: ThrowawayPostgres) -> None:
    shared_pg.create_database("sa db")  # name needing quoting and URL-escaping

    async def check() -> object:
        engine = create_async_engine(shared_pg.url("sa db"))
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT current_database()"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(check()) == "sa db"
    shared_pg.drop_database("sa db")


def test_asyncpg_fallback_when_no_psql(shared_pg: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_server, "_is_executable", lambda path: False)
    shared_pg.create_database("via_asyncpg")
    assert asyncio.run(_fetchval(shared_pg.url("via_asyncpg", driver=None), "SELECT 1")) == 1
    shared_pg.drop_database("via_asyncpg")


def test_restart_keeps_port_and_data(own_pg: ThrowawayPostgres) -> None:
    port = own_pg.port
    own_pg.create_database("keep")
    dsn = own_pg.url("keep", driver=None)
    asyncio.run(_execute(dsn, "CREATE TABLE k (v text)", "INSERT INTO k VALUES ('x')"))

    own_pg.restart()
    assert own_pg.port == port
    assert asyncio.run(_fetchval(dsn, "SELECT v FROM k")) == "x"

    own_pg.restart(mode="immediate")  # crash + recovery
    assert asyncio.run(_fetchval(dsn, "SELECT count(*) FROM k")) == 1

    own_pg.halt()
    assert not own_pg.running
    assert not _port_accepts(port)
    own_pg.resume()
    assert asyncio.run(_fetchval(dsn, "SELECT 1")) == 1


def test_stop_cleans_up() -> None:
    pg = _start_or_skip(ThrowawayPostgres())
    base, port = pg.base_dir, pg.port
    assert base is not None
    assert base.is_dir()
    assert _port_accepts(port)

    pg.stop()
    assert not base.exists()
    assert not _port_accepts(port)
    assert not pg.running
    pg.stop()  # idempotent

    with ThrowawayPostgres() as ctx:
        ctx_base = ctx.base_dir
        assert ctx.running
        assert ctx_base is not None
    assert not ctx_base.exists()


def test_missing_binaries_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGEBOT_PG_BIN", str(tmp_path))
    assert find_pg_bin() is None
    with pytest.raises(PostgresUnavailable, match=str(tmp_path)):
        ThrowawayPostgres().start()
