"""Migration 0003 converts the event rows stored by 0002 (contribution as JSON) into packed facts, and
0007 the packed facts into typed columns (and back on downgrade), so the next version of an event still
subtracts exactly what the old code added; 0004 gives the counter tables room for in-place updates
(PostgreSQL only). SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from common.db import create_engine, session_factory
from common.migrations import downgrade_async, upgrade_async
from common.regions import ALL, regions_of_country
from reporting.adapters.sqlite import SqlProjectionWriter
from reporting.adapters.writers import projection_writer
from reporting.contracts.inbound import EventState
from reporting.projections.apply import apply_changes
from reporting.projections.attribution import (
    Contribution,
    body_region,
    event_home_region,
)
from reporting.projections.changes import decode_change
from reporting.projections.event_facts import event_facts
from sqlalchemy import text
from support import SERVICE_DIR, event_data, event_message


def contribution_0002(state: EventState) -> Contribution:
    """An event's contribution as revision 0002's code stored it (JSON blocks), for the data it left."""
    if state.status == "cancelled":
        return Contribution()
    home = event_home_region(state)
    world: set[str] = set()
    for country in state.countries:
        world |= regions_of_country(country)
    years = [state.start_date.year, 0]
    values = {
        k: v
        for k, v in {
            "events.count": 1,
            "events.participants": state.participants,
            "events.foreign_participants": state.foreign_participants,
            "events.papers": state.papers,
            f"events.by_type.{state.type}": 1,
            "events.flagship": int(state.flagship),
        }.items()
        if v
    }
    blocks = [([ALL, home], years, values)]
    if world:
        blocks.append((sorted(world), years, values))
    blocks.append(([body_region(state.organizer.kind, state.organizer.code)], years, {"events.count": 1}))
    contribution = Contribution(blocks=blocks)
    if state.countries:
        by_region: dict[str, set[str]] = {}
        for country in state.countries:
            for region in {ALL, home} | regions_of_country(country):
                by_region.setdefault(region, set()).add(country)
        contribution.refs.append(("events", years, {r: sorted(cs) for r, cs in sorted(by_region.items())}))
    return contribution


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
                contribution = contribution_0002(change.state)  # what 0002's code stored, and counted
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
            legacy = await connection.scalar(text("SELECT count(*) FROM rm_aggregates WHERE kind = 'event'"))
        assert legacy == 0
        async with session_factory(engine)() as session:
            stored = await SqlProjectionWriter(session).load_events(1, [v1["id"], cancelled["id"]])
        assert stored[v1["id"]][1] == event_facts(states[v1["id"]].state)
        assert not stored[cancelled["id"]][1].active

        # The next version moves the event: the old figures leave exactly.
        v2 = {**v1, "version": v1["version"] + 1, "host_province": "320000", "countries": []}
        async with session_factory(engine)() as session, session.begin():
            await apply_changes(projection_writer(session), 1, [decode_change(event_message(v2))])
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


PACKED = {
    "e1": "1|2024|cn:440000|DE=group:eu,m49:150;TH=group:asean|body:province:440000|forum|120|3|7|1",
    "e2": "0|2023|cn:national||body:society:cast|online|0|0|0|0",
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_packed_event_facts_become_typed_columns_and_come_back_on_downgrade(dialect, tmp_path, make_database):
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db" if dialect == "sqlite" else await make_database("migrate0007")
    await upgrade_async(url, SERVICE_DIR, "0007")
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for aggregate_id, packed in PACKED.items():
                await connection.execute(
                    text("INSERT INTO rm_event_facts (gen, id, version, facts) VALUES (1, :id, 3, :facts)"),
                    {"id": aggregate_id, "facts": packed},
                )
        await engine.dispose()
        await upgrade_async(url, SERVICE_DIR)
        engine = create_engine(url)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT active, year, home, countries, body, type, participants, foreign_participants, "
                        "papers, flagship FROM rm_event_facts WHERE id = 'e1'"
                    )
                )
            ).one()
        assert tuple(row) == (
            True, 2024, "cn:440000", '{"DE":["group:eu","m49:150"],"TH":["group:asean"]}',
            "body:province:440000", "forum", 120, 3, 7, True,
        )  # fmt: skip
        async with session_factory(engine)() as session:
            stored = await SqlProjectionWriter(session).load_events(1, list(PACKED))
        assert stored["e1"][0] == 3 and dict(stored["e1"][1].countries.pairs)["TH"] == ("group:asean",)
        assert not stored["e2"][1].active and not stored["e2"][1].countries
        await engine.dispose()
        await downgrade_async(url, SERVICE_DIR, "0007")
        engine = create_engine(url)
        async with engine.connect() as connection:
            packed = dict((await connection.execute(text("SELECT id, facts FROM rm_event_facts"))).all())
        assert packed == PACKED
    finally:
        await engine.dispose()
