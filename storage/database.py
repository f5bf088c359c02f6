"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

BUSY_TIMEOUT_SECONDS = 30


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, **kwargs)
        _serialise_sqlite_writers(engine)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    """SQLite lets two deferred transactions read and then fail to upgrade to writers;
    BEGIN IMMEDIATE makes them queue on the busy timeout instead, so claims, id
    allocation and conditional writes are atomic."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "changebot_read_only"


@lru_cache(maxsize=64)
def read_only(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only. On SQLite they begin deferred, so a read never waits for
    (or holds) the write lock that every writing transaction takes with BEGIN IMMEDIATE;
    under WAL a reader sees one consistent snapshot while writers go on."""
    engine = sessions.kw["bind"]
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, class_=QueuedWriterSession)


_writer_locks: weakref.WeakKeyDictionary[Any, dict[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _writer_lock(bind: Any) -> asyncio.Lock | None:
    """One queue per SQLite database and event loop for writing transactions."""
    if bind is None or bind.dialect.name != "sqlite":
        return None
    engine = getattr(bind, "sync_engine", bind)
    engine = getattr(engine, "engine", engine)
    per_loop = _writer_locks.setdefault(engine, {})
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        per_loop.clear()  # a lock belongs to one loop; an old loop's lock is never needed again
        lock = per_loop[loop] = asyncio.Lock()
    return lock


class QueuedWriterSession(AsyncSession):
    """On SQLite, writing transactions (`session.begin()`) of one process queue on an
    asyncio lock before BEGIN IMMEDIATE. SQLite's own busy handler makes a waiter sleep
    and poll (up to 100 ms a nap), which under load cost hundreds of milliseconds per
    transaction; the lock hands the database over the moment the previous writer commits.
    Other processes (the CLI, a second replica) still meet the busy timeout."""

    def begin(self) -> Any:
        transaction = super().begin()
        lock = _writer_lock(self.bind)
        return transaction if lock is None else _QueuedTransaction(lock, transaction)


class _QueuedTransaction:
    def __init__(self, lock: asyncio.Lock, transaction: Any) -> None:
        self._lock = lock
        self._transaction = transaction

    async def __aenter__(self) -> Any:
        # As long as SQLite's busy timeout: a writer that never gets its turn (say, one
        # transaction opened inside another) fails as it would have, instead of hanging.
        await asyncio.wait_for(self._lock.acquire(), timeout=BUSY_TIMEOUT_SECONDS)
        try:
            return await self._transaction.__aenter__()
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            await self._transaction.__aexit__(kind, error, trace)
        finally:
            self._lock.release()


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
