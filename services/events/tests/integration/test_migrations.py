"""Migration 0003 gives the code columns byte-order collation on PostgreSQL, keeps the rows stored
before it and their key's uniqueness, and goes back down; on SQLite it changes nothing."""

from __future__ import annotations

import pytest
from common.db import create_engine
from common.migrations import downgrade_async, upgrade_async
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ..conftest import SERVICE_DIR

CODE_COLUMNS = {"organizer_kind", "organizer_code", "external_ref", "type", "host_province"}
ROW = (
    "INSERT INTO events (id, organizer_kind, organizer_code, external_ref, title, type, start_date, end_date, "
    "host_country, host_province, participants, foreign_participants, papers, countries, partner_org_ids, fields, "
    "target_groups, flagship, status, version, created_at, updated_at) VALUES (:id, 'province', '440000', :ref, "
    "'Forum', 'forum', '2025-05-10', '2025-05-12', 'CN', '440000', 1, 0, 0, '[]', '[]', '[]', '[]', false, "
    "'active', 1, '2025-05-01T00:00:00+00:00', '2025-05-01T00:00:00+00:00')"
)


async def _collations(url: str) -> dict[str, str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_name = 'events' AND column_name = ANY(:names)"
                ),
                {"names": sorted(CODE_COLUMNS)},
            )
            return {name: collation for name, collation in rows}
    finally:
        await engine.dispose()


async def test_code_columns_collate_bytewise_and_rows_survive_on_postgresql(make_database):
    url = await make_database("events_collation")
    await upgrade_async(url, SERVICE_DIR, "0002")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(ROW), {"id": "0190a0b0-0000-7000-8000-000000000001", "ref": "GD-1"})
        await upgrade_async(url, SERVICE_DIR)
        assert await _collations(url) == dict.fromkeys(CODE_COLUMNS, "C")
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT external_ref FROM events"))).scalars().all() == ["GD-1"]
        with pytest.raises(IntegrityError):  # the key's unique index was rebuilt, not lost
            async with engine.begin() as connection:
                await connection.execute(text(ROW), {"id": "0190a0b0-0000-7000-8000-000000000002", "ref": "GD-1"})
    finally:
        await engine.dispose()
    await downgrade_async(url, SERVICE_DIR, "0002")
    assert set((await _collations(url)).values()) == {None}  # the database's default again
    await upgrade_async(url, SERVICE_DIR)


async def test_the_migration_changes_nothing_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/events.db"
    await upgrade_async(url, SERVICE_DIR)
    await downgrade_async(url, SERVICE_DIR, "0002")
    await upgrade_async(url, SERVICE_DIR)
