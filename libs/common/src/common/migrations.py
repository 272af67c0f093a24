"""Alembic glue shared by every service: an async env.py body and a programmatic `upgrade`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_env(metadata: MetaData) -> None:
    """The whole body of a service's migrations/env.py."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        )
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool, hide_parameters=True)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(online())


def _config(database_url: str, service_dir: Path) -> Any:
    from alembic.config import Config

    from common.db import ensure_sqlite_directory

    ensure_sqlite_directory(database_url)
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("script_location", str(service_dir / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, service_dir: Path, revision: str = "head") -> None:
    """Run a service's migrations (blocking; from async code use `asyncio.to_thread`)."""
    from alembic import command

    command.upgrade(_config(database_url, service_dir), revision)


def downgrade(database_url: str, service_dir: Path, revision: str) -> None:
    """Undo a service's migrations down to `revision` (blocking)."""
    from alembic import command

    command.downgrade(_config(database_url, service_dir), revision)


async def upgrade_async(database_url: str, service_dir: Path, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, database_url, service_dir, revision)


async def downgrade_async(database_url: str, service_dir: Path, revision: str) -> None:
    await asyncio.to_thread(downgrade, database_url, service_dir, revision)
