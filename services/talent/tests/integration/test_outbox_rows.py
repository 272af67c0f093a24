"""Talent's outbox rows are common.outbox's: the PostgreSQL bulk path and the SQLite (ORM) path write
for each change exactly the row `outbox_message` builds, so the envelope and the row have one
definition. Run without the relay, so the rows stay in the outbox to be read."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from common.auth import Principal
from common.db import create_engine, session_factory
from common.migrations import upgrade_async
from common.outbox import OUTBOX_COLUMNS, message_headers, outbox_message
from sqlalchemy import select
from talent.adapters.pg_store import PgTalentStore
from talent.adapters.sql_store import SqlTalentStore
from talent.adapters.tables import outbox
from talent.application.use_cases import TalentService
from talent.contracts import PERSON_REMOVED, PERSON_UPSERTED, SOURCE

from ..conftest import SERVICE_DIR, record

CMES = Principal("cmes-client", "society", "CMES", frozenset({"talent:sync"}))
TOPIC = "talent-outbox-rows"
SERVICES = SERVICE_DIR.parent


async def _rows_and_states(url: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Sync three people, change one and remove one; the outbox rows and everyone's public state."""
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        store = (
            PgTalentStore(engine, sessions, TOPIC)
            if engine.dialect.name == "postgresql"
            else SqlTalentStore(engine, sessions, TOPIC)
        )
        service = TalentService(store)
        records = [record(n) for n in (1, 2, 3)]
        await service.sync(actor=CMES, society=None, mode="full", records=records)
        records[0]["fields"] = ["energy"]
        await service.sync(actor=CMES, society=None, mode="full", records=records[:2])
        async with engine.connect() as connection:
            rows = [dict(r) for r in (await connection.execute(select(outbox).order_by(outbox.c.id))).mappings()]
        states: dict[str, dict[str, Any]] = {}
        for row in rows:
            person = await store.get(uuid.UUID(row["key"]))
            assert person is not None
            states[row["key"]] = person.public_state()
        return rows, states
    finally:
        await engine.dispose()


def _assert_builders_rows(rows: list[dict[str, Any]], states: dict[str, dict[str, Any]]) -> None:
    assert [json.loads(r["payload"])["type"] for r in rows] == [PERSON_UPSERTED] * 4 + [PERSON_REMOVED]
    latest = {r["key"]: r for r in rows}  # each person's last message carries their stored state
    for key, row in latest.items():
        envelope = json.loads(row["payload"])
        built = outbox_message(
            source=SOURCE,
            type=envelope["type"],
            subject=key,
            data=states[key],
            message_id=row["event_id"],
            time=envelope["time"],
        )
        assert {name: row[name] for name in OUTBOX_COLUMNS if name != "created_at"} == {
            "event_id": built.event_id,
            "topic": TOPIC,
            "key": built.key,
            "payload": built.payload,  # the same bytes, not only the same JSON
            "headers": built.headers,
        }
        assert row["headers"] == message_headers(envelope["type"])
        assert row["created_at"] is not None


async def test_bulk_path_on_postgresql_writes_the_builders_rows(make_database: Any) -> None:
    rows, states = await _rows_and_states(await make_database("ta_outbox_rows"))
    _assert_builders_rows(rows, states)


async def test_orm_path_on_sqlite_writes_the_builders_rows(tmp_path: Path) -> None:
    rows, states = await _rows_and_states(f"sqlite+aiosqlite:///{tmp_path}/talent.db")
    _assert_builders_rows(rows, states)


@pytest.mark.parametrize("service", sorted(p.name for p in SERVICES.iterdir() if (p / "src").is_dir()))
def test_no_service_spells_the_outbox_row_itself(service: str) -> None:
    """Only common.outbox names the outbox's columns and builds the envelope's headers: a service
    writing rows takes `OUTBOX_COLUMNS`, `outbox_rows` and `outbox_message`."""
    spelled = re.compile(r"INSERT\s+INTO\s+\"?outbox\b|\"ce_type\"|'ce_type'", re.IGNORECASE)
    offending = [
        str(path.relative_to(SERVICES))
        for path in sorted((SERVICES / service / "src").rglob("*.py"))
        if spelled.search(path.read_text(encoding="utf-8"))
    ]
    assert offending == []
