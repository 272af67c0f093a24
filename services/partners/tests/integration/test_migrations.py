"""The partners migrations go up and down on PostgreSQL and SQLite, and up again."""

from __future__ import annotations

from common.db import create_engine
from common.migrations import downgrade_async, upgrade_async
from sqlalchemy import inspect

from ..conftest import SERVICE_DIR

TABLES = {"organizations", "agreements", "agreement_partners", "memberships", "audit_log"}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _up_down_up(url: str) -> None:
    await upgrade_async(url, SERVICE_DIR)
    assert await _tables(url) >= TABLES
    await downgrade_async(url, SERVICE_DIR, "0003")
    assert not TABLES & await _tables(url)
    assert "outbox" in await _tables(url)
    await downgrade_async(url, SERVICE_DIR, "base")
    await upgrade_async(url, SERVICE_DIR)
    assert await _tables(url) >= TABLES


async def test_up_down_up_on_postgresql(make_database):
    await _up_down_up(await make_database("pa_migrations"))


async def test_up_down_up_on_sqlite(tmp_path):
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path}/partners.db")
