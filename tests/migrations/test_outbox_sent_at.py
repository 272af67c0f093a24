"""Every service's migrations drop the outbox's `sent_at` column (the relay deletes what it publishes, so
nothing ever set it), on PostgreSQL and on SQLite, keeping the rows waiting in the outbox; the downgrade
brings the column back, empty."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from common.db import create_engine, new_metadata
from common.migrations import downgrade_async, upgrade_async
from common.outbox.table import OUTBOX_TABLE, outbox_table
from sqlalchemy import inspect, text

SERVICES = Path(__file__).resolve().parents[2] / "services"
# The revision before each service's `drop_outbox_sent_at` migration.
BEFORE = {"events": "0005", "partners": "0004", "talent": "0004", "reporting": "0006"}
ROW = {"event_id": "e-1", "topic": "t", "key": "k", "payload": "{}", "headers": "{}", "created_at": datetime.now(UTC)}


async def _outbox(url: str) -> tuple[set[str], list[str]]:
    """The outbox's columns and the event ids of its rows."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            columns = await connection.run_sync(lambda sync: inspect(sync).get_columns(OUTBOX_TABLE))
            rows = (await connection.execute(text(f"SELECT event_id FROM {OUTBOX_TABLE} ORDER BY id"))).scalars()
            return {column["name"] for column in columns}, list(rows)
    finally:
        await engine.dispose()


async def _stage(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    f"INSERT INTO {OUTBOX_TABLE} (event_id, topic, key, payload, headers, created_at) "
                    "VALUES (:event_id, :topic, :key, :payload, :headers, :created_at)"
                ),
                ROW,
            )
    finally:
        await engine.dispose()


async def _up_down_up(url: str, service: str) -> None:
    expected = {column.name for column in outbox_table(new_metadata()).columns}
    await upgrade_async(url, SERVICES / service)
    await _stage(url)
    assert await _outbox(url) == (expected, ["e-1"])
    await downgrade_async(url, SERVICES / service, BEFORE[service])
    assert await _outbox(url) == (expected | {"sent_at"}, ["e-1"])
    await upgrade_async(url, SERVICES / service)
    assert await _outbox(url) == (expected, ["e-1"])
    assert "sent_at" not in expected


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_sent_at_goes_on_postgresql(make_database, service):
    await _up_down_up(await make_database(f"outbox_sent_at_{service}"), service)


@pytest.mark.parametrize("service", sorted(BEFORE))
async def test_sent_at_goes_on_sqlite(tmp_path, service):
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path}/{service}.db", service)
