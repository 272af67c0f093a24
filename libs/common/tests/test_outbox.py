"""The transactional outbox against a real broker, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest
from common.db import session_factory
from common.envelope import new_event
from common.outbox import OutboxRelay, add_to_outbox, install_wakeup
from common.testing.infra import local_kafka
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
                message = new_event(
                    source="/test", type="exchange.test.recorded", subject=f"agg-{n % 4}", data={"n": n, "version": n}
                )
                ids.append(message.id)
                await add_to_outbox(session, outbox, message, topic)
        records = await read_topic(kafka_bootstrap, topic, expected=20)
    finally:
        await relay.stop()
    received = [json.loads(r.value)["id"] for r in records]
    assert sorted(received) == sorted(ids)  # every one, and none twice
    assert {r.key.decode() for r in records} == {f"agg-{i}" for i in range(4)}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(outbox.c.sent_at.is_(None))) == 0


async def test_rolled_back_transaction_publishes_nothing(engine, kafka_bootstrap, topic):
    sessions = session_factory(engine)
    relay = relay_for(engine, kafka_bootstrap)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                await add_to_outbox(session, outbox, new_event(source="/t", type="t", subject="a", data={}), topic)
                raise RuntimeError("the use case failed after staging its message")
        committed = new_event(source="/t", type="t", subject="b", data={"after": True})
        async with sessions() as session, session.begin():
            await add_to_outbox(session, outbox, committed, topic)
        records = await read_topic(kafka_bootstrap, topic, expected=2, timeout=5)
    finally:
        await relay.stop()
    assert [json.loads(r.value)["id"] for r in records] == [committed.id]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_broker_down_with_1000_pending_loses_nothing_and_keeps_order(engine, restartable_kafka, topic_prefix):
    from common.kafka import ensure_topics

    topic = f"{topic_prefix}restart"
    await ensure_topics(restartable_kafka, [topic], partitions=3)
    sessions = session_factory(engine)
    local_kafka("stop", port=19092, controller_port=19093)
    relay = relay_for(engine, restartable_kafka, send_timeout=3.0, batch_size=200)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        for start in range(0, 1000, 100):
            async with sessions() as session, session.begin():
                for n in range(start, start + 100):
                    message = new_event(source="/t", type="t", subject=f"key-{n % 10}", data={"seq": n})
                    await add_to_outbox(session, outbox, message, topic)
        await asyncio.sleep(2)  # the relay is failing and backing off meanwhile
        assert relay.published == 0
        assert relay.last_error is not None
        local_kafka("start", port=19092, controller_port=19093)

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
                await add_to_outbox(
                    session, outbox, new_event(source="/t", type="t", subject=f"k{n % 3}", data={"seq": n}), topic
                )
        records = await read_topic(kafka_bootstrap, topic, expected=300)
    finally:
        for relay in relays:
            await relay.stop()
    assert len(records) == 300
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r.key.decode()].append(json.loads(r.value)["data"]["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_key.values())
