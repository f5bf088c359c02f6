"""The alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.database import create_engine
from storage.migrate import HEAD_REVISION, alembic_config, current_revision, head_revision, upgrade


async def test_migrated_schema_matches_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
        assert diff == []
        assert await current_revision(engine) == head_revision(database_url) == HEAD_REVISION
    finally:
        await engine.dispose()


async def test_a_database_never_migrated_has_no_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        assert await current_revision(engine) is None
    finally:
        await engine.dispose()


async def test_the_newest_migration_goes_down_and_up_again(database_url: str) -> None:
    """Down to the revision before it and back: the schema still matches the models."""
    from alembic import command

    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0008")
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == "0008"
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade, database_url)
    await test_migrated_schema_matches_models(database_url)
