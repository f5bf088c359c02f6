"""One throwaway PostgreSQL server for the whole test run, with a migrated template database
every test copies (the `database_url` fixture and the replica tests use it)."""

from __future__ import annotations

import itertools
import sys

import pytest

from storage.migrate import upgrade
from tests.support.pg_server import PostgresUnavailable, ThrowawayPostgres

_pg: ThrowawayPostgres | None = None
_pg_error: str | None = None
db_counter = itertools.count()


def shared_postgres() -> ThrowawayPostgres:
    """One server for the whole run, with a migrated template every test copies."""
    global _pg, _pg_error
    if _pg is None and _pg_error is None:
        try:
            server = ThrowawayPostgres().start()
            server.create_database("changebot_template")
            upgrade(server.url("changebot_template"))
            _pg = server
        except PostgresUnavailable as exc:
            _pg_error = exc.reason
            print(f"\n!!! PostgreSQL tests SKIPPED: {exc.reason}\n", file=sys.stderr)
    if _pg is None:
        pytest.skip(f"PostgreSQL unavailable: {_pg_error}")
    return _pg


def stop_shared_postgres() -> None:
    """At the end of the run (conftest's pytest_sessionfinish)."""
    if _pg is not None:
        _pg.stop()
