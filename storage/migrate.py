"""Schema migrations through alembic, callable from the CLI, start-up and tests.

alembic is imported inside the functions, not at the top: it loads every dialect's DDL
implementation (~0.1 s), so only code that migrates or checks the schema should pay for it
(`serve` does, in its migration step; importing the app does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")

# The newest migration. Start-up compares the database with it in one query and loads
# alembic only when there is something to do; tests/test_migrations.py keeps it equal to
# alembic's head.
HEAD_REVISION = "0012"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking (alembic runs its own event loop): call it via asyncio.to_thread from async code."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision (None before the first migration), in one query."""
    import sqlalchemy as sa

    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: sa.inspect(sync).has_table("alembic_version")):
            return None
        return (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
