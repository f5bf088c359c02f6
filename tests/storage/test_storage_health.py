"""storage.health.is_unavailable on errors the real drivers raise, not hand-made ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from storage.database import create_engine
from storage.health import is_unavailable
from tests.support.processes import free_port


async def raised(url: str, sql: str, **engine_args: object) -> BaseException:
    engine = create_engine(url, **engine_args)
    try:
        async with engine.connect() as connection:
            await connection.execute(sa.text(sql))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("no error")


async def test_a_refused_postgres_connection_is_unavailable() -> None:
    error = await raised(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/db", "SELECT 1")
    assert is_unavailable(error)


async def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        # Not storage.database's engine: its 30 s busy timeout is the point in production.
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0})
        try:
            with pytest.raises(Exception) as caught:
                async with engine.begin() as connection:
                    await connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        finally:
            await engine.dispose()
    finally:
        holder.close()
    assert is_unavailable(caught.value)


async def test_a_missing_sqlite_directory_is_unavailable(tmp_path: Path) -> None:
    assert is_unavailable(await raised(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'x.db'}", "SELECT 1"))


async def test_bugs_and_bad_sql_are_not_unavailable(tmp_path: Path) -> None:
    bad_sql = await raised(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "SELECT * FROM no_such_table")
    assert not is_unavailable(bad_sql)
    assert not is_unavailable(KeyError("user"))
    assert not is_unavailable(ValueError("bad"))
