"""`reporting rebuild` on topics the broker has cleaned: compaction (the log starts at 0 still) gives the
same figures; deleted records (the log starts above 0) make it refuse and keep the live figures."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from common.db import create_engine, session_factory
from common.migrations import upgrade_async
from reporting.adapters.tables import generation, metadata
from reporting.rebuild.replay import RebuildRefused, rebuild
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from support import (
    EVENTS,
    PARTNERS,
    SERVICE_DIR,
    TALENT,
    Producer,
    agreement_message,
    event_data,
    event_message,
    organization_message,
    person_message,
)

COMPACTED = {
    "cleanup.policy": "compact",
    "segment.ms": "100",  # every record after 100 ms starts a new segment: older ones can be cleaned
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "100",
}


async def _create_topics(bootstrap: str, topics: list[str], configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name=t, num_partitions=2, replication_factor=1, topic_configs=configs) for t in topics]
        )
        assert all(code == 0 for _, code, *_ in response.topic_errors), response.topic_errors
    finally:
        await admin.close()


async def _records_on(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        count = 0
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=500)
            count += sum(len(records) for records in batch.values())
        return count
    finally:
        await consumer.stop()


async def _projections(engine: AsyncEngine) -> dict[str, Any]:
    """Every row of the current generation, without its generation number."""
    rows: dict[str, Any] = {}
    async with engine.connect() as connection:
        current = await connection.scalar(select(generation.c.current))
        for table in [t for t in metadata.sorted_tables if "gen" in t.c]:
            columns = [c for c in table.c if c.name != "gen"]
            result = await connection.execute(select(*columns).where(table.c.gen == current))
            rows[table.name] = sorted(tuple(str(v) for v in row) for row in result)
    return rows


@pytest.fixture
async def database(make_database) -> Any:
    url = await make_database(f"rep_logstart_{uuid.uuid4().hex[:6]}")
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


async def test_a_rebuild_of_compacted_topics_gives_identical_figures(database, kafka_bootstrap, topic_prefix):
    """The same messages on topics that keep everything and on topics the broker compacts: the two
    rebuilds give identical rows."""
    run = uuid.uuid4().hex[:6]
    kept, compacted = f"{topic_prefix}kept{run}.", f"{topic_prefix}compact{run}."
    await _create_topics(kafka_bootstrap, [kept + t for t in (EVENTS, PARTNERS, TALENT)], {})
    topics = [compacted + EVENTS, compacted + PARTNERS, compacted + TALENT]
    await _create_topics(kafka_bootstrap, topics, COMPACTED)
    events = [event_data(host_province="440000", countries=["DE"]) for _ in range(30)]
    orgs = [str(uuid.uuid4()) for _ in range(5)]
    people = [str(uuid.uuid4()) for _ in range(10)]
    produced = 0
    async with Producer(kafka_bootstrap, kept) as to_kept, Producer(kafka_bootstrap, compacted) as to_compacted:

        async def send(topic: str, *messages: Any) -> None:
            await to_kept.send(topic, *messages)
            await to_compacted.send(topic, *messages)

        for version in range(1, 6):  # every aggregate five times: compaction keeps the last of each
            newest = [event_message({**e, "version": version, "participants": 10 * version}) for e in events]
            await send(EVENTS, *newest)
            await send(
                PARTNERS,
                *[organization_message(o, ["DE", "FR", "TH"][version % 3], version=version) for o in orgs],
                agreement_message(orgs[0], orgs[1:3], version=version),
            )
            await send(TALENT, *[person_message(p, version=version, country="DE") for p in people])
            produced += len(events) + len(orgs) + 1 + len(people)
            await asyncio.sleep(0.3)  # the next ones start new segments
        # Wait until the log cleaner has really compacted: fewer records on the topics than produced.
        deadline = time.monotonic() + 120
        while sum([await _records_on(kafka_bootstrap, t) for t in topics]) >= produced:
            assert time.monotonic() < deadline, "the broker did not compact the topics within 120 s"
            await send(EVENTS, newest[0])  # the newest message again: it rolls the segment, changes nothing
            produced += 1
            await asyncio.sleep(1)
    sessions = session_factory(database)
    everything = await rebuild(
        sessions, bootstrap_servers=kafka_bootstrap, topics=[kept + t for t in (EVENTS, PARTNERS, TALENT)]
    )
    assert everything.messages == produced and everything.applied > 0
    figures = await _projections(database)
    after_compaction = await rebuild(sessions, bootstrap_servers=kafka_bootstrap, topics=topics)
    assert after_compaction.messages < produced  # the replay read the compacted topics (from offset 0)
    assert await _projections(database) == figures


async def test_a_rebuild_refuses_when_records_were_deleted(database, kafka_bootstrap, topic_prefix):
    """A topic left at the broker's default policy (delete: retention or `kafka-delete-records` removes
    records; the broker refuses both on a compact-only topic)."""
    prefix = f"{topic_prefix}deleted{uuid.uuid4().hex[:6]}."
    topics = [prefix + EVENTS, prefix + PARTNERS, prefix + TALENT]
    await _create_topics(kafka_bootstrap, topics, {"cleanup.policy": "delete"})
    async with Producer(kafka_bootstrap, prefix) as producer:
        await producer.send(EVENTS, *[event_message(event_data(host_province="440000")) for _ in range(20)])
    sessions = session_factory(database)
    await rebuild(sessions, bootstrap_servers=kafka_bootstrap, topics=topics)
    figures = await _projections(database)
    async with sessions() as session:
        before = (await session.execute(select(generation.c.current, generation.c.next))).one()
    assert figures["rm_event_facts"]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        deleted = TopicPartition(prefix + EVENTS, 1)
        await admin.delete_records({deleted: RecordsToDelete(before_offset=1)})
    finally:
        await admin.close()
    with pytest.raises(RebuildRefused, match=rf"{prefix}{EVENTS}/1 starts at offset 1"):
        await rebuild(sessions, bootstrap_servers=kafka_bootstrap, topics=topics)
    async with sessions() as session:
        assert (await session.execute(select(generation.c.current, generation.c.next))).one() == before
    assert await _projections(database) == figures
