"""Every service's latest migration drops the outbox's partial index on unsent rows (the relay deletes
what it published, so the primary key serves), on PostgreSQL and on SQLite, and its downgrade
brings the index back."""

from __future__ import annotations

from pathlib import Path

import pytest
from common.db import create_engine
from common.migrations import downgrade_async, upgrade_async
from sqlalchemy import inspect

SERVICES = Path(__file__).resolve().parents[2] / "services"
# The revision before each service's `drop_outbox_unsent_index` migration.
BEFORE = {"events": "0003", "partners": "0001", "talent": "0001", "reporting": "0004"}


async def _outbox_indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("outbox"))
            return {index["name"] for index in indexes if index["name"]}
    finally:
        await engine.dispose()


async def _up_down_up(url: str, service: str) -> None:
    await upgrade_async(url, SERVICES / service)
    assert "ix_outbox_unsent" not in await _outbox_indexes(url)
    await downgrade_async(url, SERVICES / service, BEFORE[service])
    assert "ix_outbox_unsent" in await _outbox_indexes(url)
    await upgrade_async(url, SERVICES / service)
    assert "ix_outbox_unsent" not in await _outbox_indexes(url)


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_the_partial_index_goes_on_postgresql(make_database, service):
    await _up_down_up(await make_database(f"outbox_index_{service}"), service)


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_the_partial_index_goes_on_sqlite(tmp_path, service):
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path}/{service}.db", service)
