"""The portable path on SQLite (the local default): migrations, apply, reads, and a rebuild (one process)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from common.db import create_engine, session_factory
from common.envelope import CloudEvent
from common.kafka import ensure_topics
from common.migrations import upgrade_async
from reporting.adapters.writers import projection_writer
from reporting.projections.apply import apply_changes
from reporting.projections.changes import decode_change
from reporting.read.queries import body_rows, one_snapshot, region_objects, year_trend
from reporting.rebuild.replay import rebuild
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support import (
    EVENTS,
    PARTNERS,
    SERVICE_DIR,
    Producer,
    agreement_message,
    event_data,
    event_message,
    organization_message,
)

REGIONS = ["all", "cn:320000", "cn:440000", "m49:150"]


async def test_projections_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/reporting.db"
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    sessions = session_factory(engine)
    v1 = event_data(host_province="440000", countries=["DE"], start_date="2025-02-01", participants=30)
    v2 = {**v1, "version": 2, "host_province": "320000", "participants": 40}
    messages: list[CloudEvent] = [
        event_message(v1),
        event_message(v2),
        event_message(v1),  # the older version again: ignored
        organization_message("org-1", "FR"),
        agreement_message("agr-1", ["org-1"], signed_on="2025-01-10", expires_on="2099-01-01"),
    ]
    try:
        for message in messages:  # one batch per message, as a slow trickle would arrive
            async with sessions() as session, session.begin():
                gen = await projection_writer(session).live_generation()
                change = decode_change(message)
                assert change is not None
                await apply_changes(projection_writer(session), gen, [change])
        async with sessions() as session:
            jiangsu, guangdong, europe = await region_objects(
                session, ["cn:320000", "cn:440000", "m49:150"], 2025, today=date(2026, 1, 1)
            )
            bodies = await body_rows(session, 2025)
            trend_jiangsu, trend_europe = await year_trend(session, "cn:320000"), await year_trend(session, "m49:150")
        assert [(t["year"], t["count"], t["participants"]) for t in trend_jiangsu] == [(2025, 1, 40)]
        assert [(t["year"], t["agreements_signed"]) for t in trend_europe] == [(2025, 1)]
        assert jiangsu["events"]["count"] == 1 and jiangsu["events"]["participants"] == 40
        assert guangdong["events"]["count"] == 0
        assert europe["events"]["countries"] == 1
        assert europe["partners"]["agreements_signed"] == 1 and europe["partners"]["agreements_active"] == 1
        assert europe["partners"]["countries"] == 1
        assert any(b["code"] == "440000" and b["last_change"] for b in bodies)
        assert datetime.fromisoformat(jiangsu["as_of"]).tzinfo == UTC
    finally:
        await engine.dispose()


async def _apply_live(sessions: async_sessionmaker[AsyncSession], messages: list[CloudEvent]) -> None:
    """As the live consumer applies them, one batch per message."""
    for message in messages:
        async with sessions() as session, session.begin():
            gen = await projection_writer(session).live_generation()
            change = decode_change(message)
            assert change is not None
            await apply_changes(projection_writer(session), gen, [change])


async def _figures(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, object]]:
    async with one_snapshot(sessions) as session:
        objects = await region_objects(session, REGIONS, 2025, today=date(2026, 1, 1))
        bodies = await body_rows(session, 2025)
    return [{k: v for k, v in o.items() if k != "as_of"} for o in objects] + bodies


async def test_a_rebuild_on_sqlite_swaps_in_the_live_figures_in_one_process(tmp_path, kafka_bootstrap, topic_prefix):
    url = f"sqlite+aiosqlite:///{tmp_path}/reporting.db"
    await upgrade_async(url, SERVICE_DIR)
    prefix = f"{topic_prefix}sqlite-rebuild."
    await ensure_topics(kafka_bootstrap, [prefix + EVENTS, prefix + PARTNERS], partitions=2)
    v1 = event_data(host_province="440000", countries=["DE"], start_date="2025-02-01", participants=30)
    events = [
        event_message(v1),
        event_message({**v1, "version": 2, "host_province": "320000", "participants": 40}),
        event_message(event_data(host_province="440000", countries=["FR"], start_date="2025-06-01")),
    ]
    partners = [
        organization_message("org-1", "FR"),
        agreement_message("agr-1", ["org-1"], signed_on="2025-01-10", expires_on="2099-01-01"),
    ]
    async with Producer(kafka_bootstrap, prefix) as producer:
        await producer.send(EVENTS, *events)
        await producer.send(PARTNERS, *partners)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await _apply_live(sessions, [*events, *partners])
        live = await _figures(sessions)
        assert live[1]["events"]["count"] == 1 and live[1]["events"]["participants"] == 40  # type: ignore[index]
        topics = [prefix + EVENTS, prefix + PARTNERS]
        with pytest.raises(ValueError, match="needs PostgreSQL"):
            await rebuild(sessions, bootstrap_servers=kafka_bootstrap, topics=topics, workers=2)
        for expected in (2, 3):  # the lock, nothing on SQLite, is not left behind by the first
            report = await rebuild(sessions, bootstrap_servers=kafka_bootstrap, topics=topics)
            assert (report.generation, report.previous_generation) == (expected, expected - 1)
            assert report.messages == len(events) + len(partners)
            assert await _figures(sessions) == live
    finally:
        await engine.dispose()
