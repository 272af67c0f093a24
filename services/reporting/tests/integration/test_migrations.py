"""Migration 0003 converts the event rows stored by 0002 (contribution as JSON) into packed facts, so the
next version of an event still subtracts exactly what the old code added; 0004 gives the counter tables
room for in-place updates (PostgreSQL only). SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from common.db import create_engine, session_factory
from common.migrations import upgrade_async
from reporting.projections.attribution import event_contribution
from reporting.projections.changes import decode_change
from reporting.projections.event_facts import EventFacts, event_facts
from reporting.projections.store import apply_changes
from sqlalchemy import text
from support import SERVICE_DIR, event_data, event_message


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_stored_event_contributions_are_converted_and_subtract_exactly(dialect, tmp_path, make_database):
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db" if dialect == "sqlite" else await make_database("migrate0003")
    await upgrade_async(url, SERVICE_DIR, "0002")
    v1 = event_data(host_province="440000", countries=["DE", "TH"], start_date="2025-02-01", participants=30)
    cancelled = {**event_data(), "status": "cancelled"}
    states = {d["id"]: decode_change(event_message(d)) for d in (v1, cancelled)}
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for aggregate_id, change in states.items():
                assert change is not None
                contribution = event_contribution(change.state)  # what 0002's code stored, and counted
                await connection.execute(
                    text(
                        "INSERT INTO rm_aggregates (gen, kind, id, version, facts, contribution, changed_at) "
                        "VALUES (1, 'event', :id, :version, NULL, :contribution, :at)"
                    ),
                    {"id": aggregate_id, "version": change.version, "at": datetime.now(UTC),
                     "contribution": json.dumps(contribution.to_json())},
                )  # fmt: skip
                metrics: dict = {}
                contribution.add_to(metrics, {}, +1)
                for (region, year, metric), value in metrics.items():
                    await connection.execute(
                        text("INSERT INTO rm_metrics (gen, region, year, metric, value) VALUES (1, :r, :y, :m, :v)"),
                        {"r": region, "y": year, "m": metric, "v": value},
                    )
        await engine.dispose()
        await upgrade_async(url, SERVICE_DIR)
        engine = create_engine(url)
        async with engine.connect() as connection:
            stored = dict((await connection.execute(text("SELECT id, facts FROM rm_event_facts"))).all())
            legacy = await connection.scalar(text("SELECT count(*) FROM rm_aggregates WHERE kind = 'event'"))
        assert legacy == 0
        converted = EventFacts.unpack(stored[v1["id"]])
        assert converted == event_facts(states[v1["id"]].state)
        assert not EventFacts.unpack(stored[cancelled["id"]]).active

        # The next version moves the event: the old figures leave exactly.
        v2 = {**v1, "version": v1["version"] + 1, "host_province": "320000", "countries": []}
        async with session_factory(engine)() as session, session.begin():
            await apply_changes(session, 1, [decode_change(event_message(v2))])
        async with engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT region, metric, value FROM rm_metrics WHERE year = 2025"))
            ).all()
        figures = {(r, m): v for r, m, v in rows if v}
        assert figures[("cn:320000", "events.count")] == 1 and ("cn:440000", "events.count") not in figures
        assert not any(region.startswith(("group:", "m49:")) for region, _metric in figures)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_counter_tables_leave_room_for_in_place_updates(dialect, tmp_path, make_database):
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db" if dialect == "sqlite" else await make_database("migrate0004")
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    try:
        if dialect == "postgresql":
            async with engine.connect() as connection:
                options = dict(
                    (
                        await connection.execute(
                            text(
                                "SELECT relname, reloptions FROM pg_class "
                                "WHERE relname IN ('rm_metrics', 'rm_country_refs', 'rm_event_facts')"
                            )
                        )
                    ).all()
                )
            assert options == {
                "rm_metrics": ["fillfactor=50"],
                "rm_country_refs": ["fillfactor=50"],
                "rm_event_facts": None,
            }
    finally:
        await engine.dispose()
