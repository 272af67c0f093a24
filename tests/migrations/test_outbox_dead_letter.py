"""Every service's migrations create the outbox's dead-letter table (where the relay moves rows it can
never publish), on PostgreSQL and on SQLite, with the columns the relay writes; the downgrade drops it."""

from __future__ import annotations

from pathlib import Path

import pytest
from common.db import create_engine, new_metadata
from common.migrations import downgrade_async, upgrade_async
from common.outbox.table import DEAD_LETTER_TABLE, dead_letter_table
from sqlalchemy import inspect

SERVICES = Path(__file__).resolve().parents[2] / "services"
# The revision before each service's `outbox_dead_letter` migration.
BEFORE = {"events": "0004", "partners": "0002", "talent": "0002", "reporting": "0005"}


async def _columns(url: str) -> set[str] | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def read(sync: object) -> set[str] | None:
                inspector = inspect(sync)
                if not inspector.has_table(DEAD_LETTER_TABLE):
                    return None
                return {column["name"] for column in inspector.get_columns(DEAD_LETTER_TABLE)}

            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def _up_down_up(url: str, service: str) -> None:
    expected = {column.name for column in dead_letter_table(new_metadata()).columns}
    await upgrade_async(url, SERVICES / service)
    assert await _columns(url) == expected
    await downgrade_async(url, SERVICES / service, BEFORE[service])
    assert await _columns(url) is None
    await upgrade_async(url, SERVICES / service)
    assert await _columns(url) == expected


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_the_dead_letter_table_comes_on_postgresql(make_database, service):
    await _up_down_up(await make_database(f"outbox_dead_letter_{service}"), service)


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_the_dead_letter_table_comes_on_sqlite(tmp_path, service):
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path}/{service}.db", service)
