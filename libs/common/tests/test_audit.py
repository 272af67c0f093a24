"""The common audit record on PostgreSQL and SQLite: entries in the caller's transaction, personal
fields by name only, history by cursor, purge by retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from common.audit import (
    PERSONAL,
    audit_history,
    audit_retention,
    audit_table,
    field_changes,
    purge_audit,
    record_audit,
)
from common.auth import Principal
from common.db import create_engine, new_metadata

HQ = Principal(sub="hq-client", org_kind="hq", org_code="HQ", scopes=frozenset({"admin"}))


def test_field_changes_lists_only_what_differs_and_hides_personal_values():
    old = {"name": "Li Lei", "country": "DE", "expires_on": date(2026, 1, 1), "fields": ["a"]}
    new = {"name": "Han Meimei", "country": "DE", "expires_on": date(2027, 1, 1), "fields": ["a", "b"]}
    changes = field_changes(old, new, personal={"name"})
    assert changes == {
        "name": {"old": PERSONAL, "new": PERSONAL},
        "expires_on": {"old": "2026-01-01", "new": "2027-01-01"},
        "fields": {"old": ["a"], "new": ["a", "b"]},
    }
    assert "Li Lei" not in repr(changes) and "Han Meimei" not in repr(changes)


def test_field_changes_of_a_creation_and_an_erasure():
    assert field_changes(None, {"country": "FR", "email": "x@example.org"}, personal={"email"}) == {
        "country": {"old": None, "new": "FR"},
        "email": {"old": None, "new": PERSONAL},
    }
    assert field_changes({"email": "x@example.org"}, None, personal={"email"}) == {
        "email": {"old": PERSONAL, "new": None}
    }


async def _engine(url: str):
    metadata = new_metadata()
    table = audit_table(metadata)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return engine, table


async def _check_round_trip(url: str) -> None:
    engine, table = await _engine(url)
    try:
        async with engine.begin() as connection:
            for n in range(3):
                await record_audit(
                    connection,
                    table,
                    actor=HQ,
                    action="agreement.renewed",
                    entity="agreement",
                    entity_id="a1",
                    changes={"expires_on": {"old": f"202{n}-01-01", "new": f"202{n + 1}-01-01"}},
                )
            await record_audit(
                connection,
                table,
                actor=HQ,
                action="agreement.signed",
                entity="agreement",
                entity_id="other",
                changes={},
                at=datetime.now(UTC) - timedelta(days=400),
            )
        async with engine.begin() as connection:  # an entry rolled back with its change is not kept
            await record_audit(connection, table, actor=HQ, action="x", entity="agreement", entity_id="a1", changes={})
            await connection.rollback()
        async with engine.connect() as connection:
            first = await audit_history(connection, table, entity="agreement", entity_id="a1", limit=2)
            rest = await audit_history(connection, table, entity="agreement", entity_id="a1", after_id=first[-1].id)
        assert [e.changes["expires_on"]["new"] for e in [*first, *rest]] == ["2021-01-01", "2022-01-01", "2023-01-01"]
        assert first[0].actor == {"sub": "hq-client", "kind": "hq", "code": "HQ"}
        assert first[0].at.tzinfo is not None
        async with engine.begin() as connection:
            assert await purge_audit(connection, table, retention_days=365) == 1
        async with engine.connect() as connection:
            assert await audit_history(connection, table, entity="agreement", entity_id="other") == []
    finally:
        await engine.dispose()


async def test_audit_round_trip_on_postgresql(make_database):
    await _check_round_trip(await make_database("audit"))


async def test_audit_round_trip_on_sqlite(tmp_path):
    await _check_round_trip(f"sqlite+aiosqlite:///{tmp_path}/audit.db")


async def test_the_retention_task_purges_old_entries_while_the_service_runs(tmp_path):
    engine, table = await _engine(f"sqlite+aiosqlite:///{tmp_path}/retention.db")
    try:
        async with engine.begin() as connection:
            for age in (400, 10):
                await record_audit(
                    connection,
                    table,
                    actor=HQ,
                    action="x",
                    entity="agreement",
                    entity_id=f"aged-{age}",
                    changes={},
                    at=datetime.now(UTC) - timedelta(days=age),
                )
        async with audit_retention(engine, table, retention_days=365):
            for _ in range(100):
                async with engine.connect() as connection:
                    left = await audit_history(connection, table, entity="agreement", entity_id="aged-400")
                if not left:
                    break
                await asyncio.sleep(0.05)
        async with engine.connect() as connection:
            assert await audit_history(connection, table, entity="agreement", entity_id="aged-400") == []
            assert len(await audit_history(connection, table, entity="agreement", entity_id="aged-10")) == 1
    finally:
        await engine.dispose()
