"""The transactional outbox against a real broker, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict

import pytest
from common.db import session_factory
from common.kafka import ensure_topics, new_producer
from common.outbox import OutboxRelay, install_wakeup, outbox_message, stage
from common.outbox.relay import murmur2, partition_for
from common.testing.plugin import read_topic, wait_until
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import counters, outbox


def relay_for(engine: AsyncEngine, bootstrap: str, **kwargs) -> OutboxRelay:
    return OutboxRelay(
        service="test", sessions=session_factory(engine), outbox=outbox, bootstrap_servers=bootstrap, **kwargs
    )


async def test_committed_messages_are_published_once_each(engine, kafka_bootstrap, topic):
    sessions = session_factory(engine)
    relay = relay_for(engine, kafka_bootstrap)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        ids = []
        for n in range(20):
            async with sessions() as session, session.begin():
                await session.execute(insert(counters).values(key=f"k{n}", value=n))
                message = outbox_message(
                    source="/test", type="exchange.test.recorded", subject=f"agg-{n % 4}", data={"n": n, "version": n}
                )
                ids.append(message.event_id)
                await stage(session, outbox, [message], topic)
        records = await read_topic(kafka_bootstrap, topic, expected=20)

        async def outbox_empty() -> bool:  # published rows are deleted, not kept marked as sent
            async with sessions() as session:
                return await session.scalar(select(func.count()).select_from(outbox)) == 0

        await wait_until(outbox_empty, timeout=10)  # the delete commits just after the broker's ack
    finally:
        await relay.stop()
    received = [json.loads(r.value)["id"] for r in records]
    assert sorted(received) == sorted(ids)  # every one, and none twice
    assert {r.key.decode() for r in records} == {f"agg-{i}" for i in range(4)}


async def test_rolled_back_transaction_publishes_nothing(engine, kafka_bootstrap, topic):
    sessions = session_factory(engine)
    relay = relay_for(engine, kafka_bootstrap)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                await stage(session, outbox, [outbox_message(source="/t", type="t", subject="a", data={})], topic)
                raise RuntimeError("the use case failed after staging its message")
        committed = outbox_message(source="/t", type="t", subject="b", data={"after": True})
        async with sessions() as session, session.begin():
            await stage(session, outbox, [committed], topic)
        records = await read_topic(kafka_bootstrap, topic, expected=2, timeout=5)
    finally:
        await relay.stop()
    assert [json.loads(r.value)["id"] for r in records] == [committed.event_id]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_broker_down_with_1000_pending_loses_nothing_and_keeps_order(
    engine, restartable_broker, restartable_kafka, topic_prefix
):
    from common.kafka import ensure_topics

    topic = f"{topic_prefix}restart"
    await ensure_topics(restartable_kafka, [topic], partitions=3)
    sessions = session_factory(engine)
    restartable_broker.stop()
    relay = relay_for(engine, restartable_kafka, send_timeout=3.0, batch_size=200)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        for start in range(0, 1000, 100):
            async with sessions() as session, session.begin():
                for n in range(start, start + 100):
                    message = outbox_message(source="/t", type="t", subject=f"key-{n % 10}", data={"seq": n})
                    await stage(session, outbox, [message], topic)
        await asyncio.sleep(2)  # the relay is failing and backing off meanwhile
        assert relay.published == 0
        assert relay.last_error is not None
        restartable_broker.start()

        async def drained() -> bool:
            return await relay.backlog() == 0

        await wait_until(drained, timeout=60)
        records = await read_topic(restartable_kafka, topic, expected=1000, timeout=30)
    finally:
        await relay.stop()
    sequences: dict[str, list[int]] = defaultdict(list)
    for r in records:
        sequences[r.key.decode()].append(json.loads(r.value)["data"]["seq"])
    assert sum(len(set(s)) for s in sequences.values()) == 1000  # none lost
    for seqs in sequences.values():
        firsts = list(dict.fromkeys(seqs))  # at-least-once may repeat; order must hold
        assert firsts == sorted(firsts)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_two_relays_publish_each_message_and_keep_order(engine, kafka_bootstrap, topic):
    sessions = session_factory(engine)
    relays = [relay_for(engine, kafka_bootstrap, batch_size=50) for _ in range(2)]
    for relay in relays:
        install_wakeup(sessions, relay.wake)
        relay.start()
    try:
        for n in range(300):
            async with sessions() as session, session.begin():
                message = outbox_message(source="/t", type="t", subject=f"k{n % 3}", data={"seq": n})
                await stage(session, outbox, [message], topic)
        records = await read_topic(kafka_bootstrap, topic, expected=300)
    finally:
        for relay in relays:
            await relay.stop()
    assert len(records) == 300
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r.key.decode()].append(json.loads(r.value)["data"]["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_key.values())


def test_murmur2_is_aiokafkas():
    from aiokafka.partitioner import murmur2 as aiokafkas

    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(0, 80)) for _ in range(5000)] + [str(uuid.uuid4()).encode() for _ in range(500)]
    assert [murmur2(k) for k in keys] == [aiokafkas(k) for k in keys]


@pytest.mark.parametrize("partitions", [3, 7])
async def test_partition_for_is_the_partition_send_picks(kafka_bootstrap, topic_prefix, partitions):
    # The relay fills per-partition batches itself; placement must stay what producer.send() does.
    topic = f"{topic_prefix}placement-{partitions}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=partitions)
    producer = new_producer(kafka_bootstrap, client_id="test-placement")
    await producer.start()
    try:
        keys = [f"key-{n}".encode() for n in range(100)] + [str(uuid.uuid4()).encode() for _ in range(100)]
        futures = [await producer.send(topic, b"{}", key=key) for key in keys]
        sent = [(await f).partition for f in futures]
        ours = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    assert len(ours) == partitions
    assert [partition_for(key, ours) for key in keys] == sent
    assert len(set(sent)) == partitions  # the keys spread over every partition


async def test_relay_places_keys_like_send_and_keeps_order_across_full_batches(engine, kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}full-batches-{engine.dialect.name}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)

    # Batches of 2 KiB hold ~10 messages: a 400-row cycle fills and hands over many per partition.
    def small_batches():
        producer = new_producer(kafka_bootstrap, client_id="test-relay", linger_ms=0, max_batch_size=2048)
        assert producer._message_accumulator._batch_size == 2048
        return producer

    sessions = session_factory(engine)
    relay = relay_for(engine, kafka_bootstrap, producer_factory=small_batches)
    async with sessions() as session, session.begin():
        for n in range(400):
            message = outbox_message(source="/t", type="t", subject=f"agg-{n % 13}", data={"seq": n, "pad": "x" * 100})
            await stage(session, outbox, [message], topic)
    try:
        assert await relay.publish_once() == 400
        records = await read_topic(kafka_bootstrap, topic, expected=400)
    finally:
        await relay.stop()
    assert len(records) == 400
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        assert r.partition == partition_for(r.key, [0, 1, 2])
        assert dict(r.headers)["content-type"] == b"application/cloudevents+json"
        per_key[r.key.decode()].append(json.loads(r.value)["data"]["seq"])
    assert sorted(per_key) == sorted(f"agg-{k}" for k in range(13))
    assert all(seqs == sorted(seqs) for seqs in per_key.values())


async def test_a_batch_the_broker_refuses_rolls_the_claim_back(engine, kafka_bootstrap, topic_prefix):
    # The topic takes record batches of at most 4 KiB; the relay's batch of 100 messages is larger, so
    # the broker refuses it (not retriable): the cycle fails and every row stays unsent.
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"{topic_prefix}refused-{engine.dialect.name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "4096"})]
        )
    finally:
        await admin.close()
    sessions = session_factory(engine)
    relay = relay_for(engine, kafka_bootstrap, send_timeout=10.0)
    async with sessions() as session, session.begin():
        for n in range(100):
            message = outbox_message(source="/t", type="t", subject=f"k{n % 5}", data={"seq": n, "pad": "x" * 100})
            await stage(session, outbox, [message], topic)
    try:
        with pytest.raises(Exception, match="TooLarge"):
            await relay.publish_once()
    finally:
        await relay.stop()
    assert relay.published == 0
    assert await relay.backlog() == 100
