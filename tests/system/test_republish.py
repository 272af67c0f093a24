"""`events republish` after a restore: a consumer that missed changes (its database restored behind its
committed offsets) catches up, and one that is up to date changes nothing (its version gate ignores the
versions it has). Real Kafka, real PostgreSQL, both services' own apps."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from asgi_lifespan import LifespanManager
from common.db import create_engine
from common.migrations import upgrade_async
from common.testing.plugin import wait_until
from events.adapters.republish import AGGREGATES
from events.config import EventsSettings
from events.contracts import TOPIC
from events.entrypoints.app import create_app as create_events_app
from reporting.config import ReportingSettings
from reporting.entrypoints.app import create_app as create_reporting_app
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
EVENT = {
    "title": "China–Germany Forum on Hydrogen Energy",
    "type": "forum",
    "start_date": "2025-05-10",
    "end_date": "2025-05-12",
    "host_country": "CN",
    "host_province": "440000",
    "participants": 320,
    "foreign_participants": 85,
    "papers": 64,
    "countries": ["DE", "FR"],
}


@asynccontextmanager
async def serving(app: Any) -> Any:
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def scalar_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(query))).all()]
    finally:
        await engine.dispose()


async def move_group_to_end(bootstrap: str, group: str, topic: str, partitions_count: int) -> None:
    """Commit the group's offsets at the end of `topic`: what a consumer restored from an older backup sees."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partitions_count)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


@pytest.mark.timeout(240)
async def test_republish_repairs_a_consumer_that_missed_changes_and_is_harmless_otherwise(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    events_url = await make_database("republish_events")
    reporting_url = await make_database("republish_reporting")
    await upgrade_async(events_url, ROOT / "services" / "events")
    await upgrade_async(reporting_url, ROOT / "services" / "reporting")
    common = {"kafka_bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix, "jwt_secret": jwt_secret}
    events_settings = EventsSettings(database_url=events_url, environment="test", **common)
    group = f"{topic_prefix}republish-reporting"
    reporting_settings = ReportingSettings(
        database_url=reporting_url, environment="test", consumer_group=group, **common
    )
    auth = {"Authorization": token("province", "440000", "events:write")}

    async def facts() -> dict[str, int]:
        return dict(await scalar_rows(reporting_url, "SELECT id, version FROM rm_event_facts"))

    async def outbox_empty() -> bool:
        return (await scalar_rows(events_url, "SELECT count(*) FROM outbox"))[0][0] == 0

    async def figures() -> list[tuple[Any, ...]]:
        return await scalar_rows(reporting_url, "SELECT region, year, metric, value FROM rm_metrics ORDER BY 1, 2, 3")

    async with serving(create_events_app(events_settings)) as events:
        async with serving(create_reporting_app(reporting_settings)):
            first = (await events.post("/v1/events", json={**EVENT, "external_ref": "a"}, headers=auth)).json()
            second = (await events.post("/v1/events", json={**EVENT, "external_ref": "b"}, headers=auth)).json()
            await wait_until(lambda: _equals(facts, {first["id"]: 1, second["id"]: 1}), timeout=60)

        # While reporting is down: one change and one new event; then its offsets pass them unapplied.
        changed = await events.patch(
            f"/v1/events/{first['id']}", json={"participants": 400}, headers={**auth, "If-Match": '"1"'}
        )
        assert changed.status_code == 200, changed.text
        third = (await events.post("/v1/events", json={**EVENT, "external_ref": "c"}, headers=auth)).json()
        await wait_until(outbox_empty, timeout=60)
        await move_group_to_end(kafka_bootstrap, group, events_settings.topic(TOPIC), events_settings.topic_partitions)

        async with serving(create_reporting_app(reporting_settings)):
            assert await facts() == {first["id"]: 1, second["id"]: 1}  # it missed both
            await _republish(events_settings)
            repaired = {first["id"]: 2, second["id"]: 1, third["id"]: 1}
            await wait_until(lambda: _equals(facts, repaired), timeout=60)
            await wait_until(outbox_empty, timeout=60)
            before = await figures()
            inbox_before = (await scalar_rows(reporting_url, "SELECT count(*) FROM inbox"))[0][0]

            # Up to date now: a second republish is applied (three more inbox ids) and changes nothing.
            await _republish(events_settings)
            await wait_until(outbox_empty, timeout=60)

            async def seen_again() -> bool:
                return (await scalar_rows(reporting_url, "SELECT count(*) FROM inbox"))[0][0] == inbox_before + 3

            await wait_until(seen_again, timeout=60)
            assert await facts() == repaired
            assert await figures() == before


async def _equals(read: Any, expected: dict[str, int]) -> bool:
    return bool(await read() == expected)


async def _republish(settings: EventsSettings) -> None:
    from common.db import session_factory
    from common.republish import republish
    from events.adapters.tables import outbox

    engine = create_engine(settings.database_url)
    try:
        counts = await republish(session_factory(engine), outbox, AGGREGATES, settings=settings)
    finally:
        await engine.dispose()
    assert counts == {"events": 3}
