"""One answer to "is this error the database being unreachable?".

The door turns such errors into "try again in a minute" instead of a 500, so the test
lives here, next to the drivers, and nowhere else (the domain knows no SQLAlchemy).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# Driver errors that mean the server is gone, restarting or refusing connections.
_ASYNCPG_UNAVAILABLE = (
    "PostgresConnectionError",  # base of ConnectionDoesNotExistError, ConnectionFailureError, …
    "InterfaceError",  # "connection is closed", "cannot perform operation: another operation …"
    "CannotConnectNowError",  # the server is starting up or in recovery
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
)
# SQLite: another process holds the lock past the busy timeout, or the file cannot be opened.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


def is_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) says the database cannot be reached right
    now, as opposed to a bug or a constraint: worth "try again", not a traceback."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unavailable_here(current):
            return True
        original = getattr(current, "orig", None)
        if isinstance(original, BaseException) and _unavailable_here(original):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unavailable_here(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.InterfaceError, sa_exc.DisconnectionError)):
        return True
    if isinstance(error, sa_exc.TimeoutError | asyncio.TimeoutError | OSError):
        # Pool checkout or connect timeout, refused, reset, unreachable. (asyncpg raises a
        # refused connect bare; an HTTP client's connection errors are not the database's.)
        return not type(error).__module__.startswith(("aiohttp", "slack_sdk", "urllib"))
    if isinstance(error, sa_exc.OperationalError):
        text = str(error).lower()
        return any(marker in text for marker in _SQLITE_UNAVAILABLE) or _is_connection_text(text)
    names = {kind.__name__ for kind in type(error).__mro__}
    if type(error).__module__.startswith("asyncpg") and names & set(_ASYNCPG_UNAVAILABLE):
        return True
    if type(error).__module__.startswith(("sqlite3", "aiosqlite")):
        return any(marker in str(error).lower() for marker in _SQLITE_UNAVAILABLE)
    return False


def _is_connection_text(text: str) -> bool:
    return any(
        marker in text
        for marker in ("connection refused", "connection was closed", "could not connect", "server closed")
    )
