"""The consumer helper against a real broker: exactly once in effect, dead letters, crash points."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from common.db import session_factory
from common.envelope import CloudEvent
from common.kafka.consumer import ConsumerRunner, Decoded, Delivery, InvalidMessage, decode_envelope
from common.testing.messages import cloud_event
from common.testing.plugin import read_topic, wait_until
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .conftest import counters, inbox


class CountingHandler:
    """Adds data.amount to counters[data.key]; rejects messages without an integer amount."""

    def decode(self, topic: str, raw: bytes) -> Decoded:
        envelope = decode_envelope(raw)
        amount = envelope.data.get("amount")
        if not isinstance(amount, int):
            raise InvalidMessage("data.amount must be an integer")
        return Decoded(envelope.id, (str(envelope.data["key"]), amount))

    async def apply(self, session, deliveries: Sequence[Delivery]) -> None:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        for d in deliveries:
            key, amount = d.decoded
            await session.execute(insert(counters).values(key=key, value=0).on_conflict_do_nothing())
            await session.execute(update(counters).where(counters.c.key == key).values(value=counters.c.value + amount))


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


def message(amount: object, key: str = "total") -> CloudEvent:
    return cloud_event(source="/test", type="exchange.test.counted", subject=key, data={"key": key, "amount": amount})


async def counter(engine, key: str = "total") -> int | None:
    async with session_factory(engine)() as session:
        return await session.scalar(select(counters.c.value).where(counters.c.key == key))


def runner(engine, bootstrap: str, topic: str, group: str, **kwargs) -> ConsumerRunner:
    return ConsumerRunner(
        service="test",
        topics=[topic],
        group_id=group,
        sessions=session_factory(engine),
        inbox=inbox,
        handler=CountingHandler(),
        bootstrap_servers=bootstrap,
        **kwargs,
    )


async def test_duplicate_delivery_changes_nothing(engine, kafka_bootstrap, topic, run_id):
    first, second = message(5), message(7)
    # The relay publishes at least once: the same CloudEvent id may arrive twice, even in one batch.
    await produce(kafka_bootstrap, topic, [first.to_bytes(), first.to_bytes(), second.to_bytes(), first.to_bytes()])
    consumer = runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}")
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 12))
        await produce(kafka_bootstrap, topic, [second.to_bytes()])
        await wait_until(lambda: _true(consumer.state.duplicates >= 3))
        await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
    assert await counter(engine) == 12
    assert consumer.state.processed == 2


async def test_malformed_message_goes_to_dlq_and_next_is_processed(engine, kafka_bootstrap, topic, run_id):
    await produce(kafka_bootstrap, topic, [b"{not json", message("seven").to_bytes(), message(3).to_bytes()])
    consumer = runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}")
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 3))
    finally:
        await consumer.stop()
    dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=2)
    assert next(r.value for r in dead) == b"{not json"
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in dead]
    assert reasons == ["invalid-envelope", "invalid-data"]
    assert dict(dead[1].headers)["dlq.original.topic"].decode() == topic
    assert consumer.state.dead_lettered == 2


class Crash(Exception):
    pass


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_crash_between_db_commit_and_offset_commit_double_counts_nothing(engine, kafka_bootstrap, topic, run_id):
    await produce(kafka_bootstrap, topic, [message(n).to_bytes() for n in (1, 2, 3)])
    group = f"g-{run_id}-{topic}"

    async def crash_after_db_commit() -> None:
        raise Crash("killed after the database commit, before the offset commit")

    crashing = runner(engine, kafka_bootstrap, topic, group, after_db_commit=crash_after_db_commit)
    crashing.start()
    await wait_until(lambda: _eq(counter(engine), 6))
    await crashing.stop()  # its offsets were never committed: everything is redelivered
    survivor = runner(engine, kafka_bootstrap, topic, group)
    survivor.start()
    try:
        await wait_until(lambda: _true(survivor.state.duplicates >= 3))
    finally:
        await survivor.stop()
    assert await counter(engine) == 6
    assert survivor.state.processed == 0


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_crash_before_db_commit_loses_nothing(engine, kafka_bootstrap, topic, run_id):
    await produce(kafka_bootstrap, topic, [message(n).to_bytes() for n in (10, 20)])
    group = f"g-{run_id}-{topic}"

    class FailingHandler(CountingHandler):
        async def apply(self, session, deliveries):
            await super().apply(session, deliveries)
            raise Crash("killed inside the transaction")

    crashing = ConsumerRunner(
        service="test",
        topics=[topic],
        group_id=group,
        sessions=session_factory(engine),
        inbox=inbox,
        handler=FailingHandler(),
        bootstrap_servers=kafka_bootstrap,
        isolate_after=1000,  # a crash each time, not a poison message: never dead-letter here
    )
    crashing.start()
    await asyncio.sleep(2)
    await crashing.stop()
    assert await counter(engine) is None  # rolled back: nothing applied, nothing in the inbox
    survivor = runner(engine, kafka_bootstrap, topic, group)
    survivor.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 30))
    finally:
        await survivor.stop()
    assert survivor.state.processed == 2


async def _eq(value_coro, expected) -> bool:
    return (await value_coro) == expected


async def _true(value: bool) -> bool:
    return value


def test_envelope_round_trip():
    event = message(1)
    assert CloudEvent.from_bytes(event.to_bytes()) == event
    assert json.loads(event.to_bytes())["specversion"] == "1.0"


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_consumer_carries_on_after_a_broker_restart(
    engine, restartable_broker, restartable_kafka, topic_prefix, run_id
):
    from common.kafka import ensure_topics

    topic = f"{topic_prefix}consumer-restart"
    await ensure_topics(restartable_kafka, [topic, f"{topic}.dlq"], partitions=3)
    await produce(restartable_kafka, topic, [message(1).to_bytes()])
    consumer = runner(engine, restartable_kafka, topic, f"g-{run_id}-restart", stall_timeout=5)
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 1))
        restartable_broker.stop()
        await asyncio.sleep(3)
        restartable_broker.start()
        await produce(restartable_kafka, topic, [message(n).to_bytes() for n in (10, 100)])
        await wait_until(lambda: _eq(counter(engine), 111), timeout=90)
    finally:
        await consumer.stop()
    # The outage was retried, not blamed on the messages: no isolation, nothing dead-lettered.
    assert consumer.state.poison_failures == 0 and consumer.state.dead_lettered == 0
    assert await read_topic(restartable_kafka, f"{topic}.dlq", expected=0, timeout=1) == []


async def test_trace_context_travels_from_the_writer_to_the_consumer(engine, kafka_bootstrap, topic, run_id):
    from common.observability import new_traceparent, traceparent_var
    from common.outbox import OutboxRelay, outbox_message, stage

    from .conftest import outbox

    sessions = session_factory(engine)
    incoming = new_traceparent(None)
    token = traceparent_var.set(incoming)
    try:
        async with sessions() as session, session.begin():
            data = {"key": "total", "amount": 4}
            written = outbox_message(source="/test", type="exchange.test.counted", subject="total", data=data)
            await stage(session, outbox, [written], topic)
    finally:
        traceparent_var.reset(token)
    relay = OutboxRelay(service="test", sessions=sessions, outbox=outbox, bootstrap_servers=kafka_bootstrap)
    await relay.publish_once()
    await relay.stop()
    seen: list[Delivery] = []

    async def remember(deliveries):
        seen.extend(deliveries)

    consumer = runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}", after_batch=remember)
    consumer.start()
    try:
        await wait_until(lambda: _true(len(seen) == 1))
    finally:
        await consumer.stop()
    trace_id = incoming.split("-")[1]
    assert seen[0].traceparent is not None and seen[0].traceparent.split("-")[1] == trace_id
    assert seen[0].traceparent != incoming  # a child span of the producer's


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_message_that_always_fails_to_apply_is_isolated_and_dead_lettered(
    engine, kafka_bootstrap, topic, run_id
):
    poison = message(1, key="k" * 100)  # longer than counters.key allows: the database refuses it
    await produce(kafka_bootstrap, topic, [message(2).to_bytes(), poison.to_bytes(), message(3).to_bytes()])
    consumer = runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}")
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 5), timeout=60)
    finally:
        await consumer.stop()
    dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert [json.loads(r.value)["id"] for r in dead] == [poison.id]
    assert dict(dead[0].headers)["dlq.reason"] == b"apply-failed"


async def test_an_overlong_event_id_is_dead_lettered_not_retried(engine, kafka_bootstrap, topic, run_id):
    overlong = message(1).model_copy(update={"id": "x" * 65})
    await produce(kafka_bootstrap, topic, [overlong.to_bytes(), message(9).to_bytes()])
    consumer = runner(engine, kafka_bootstrap, topic, f"g-{run_id}-{topic}")
    consumer.start()
    try:
        await wait_until(lambda: _eq(counter(engine), 9))
    finally:
        await consumer.stop()
    assert consumer.state.dead_lettered == 1


class SlowHandler(CountingHandler):
    """Keeps every batch in flight a while, so a rebalance lands while one is being applied."""

    async def apply(self, session, deliveries: Sequence[Delivery]) -> None:
        await asyncio.sleep(0.1)
        await super().apply(session, deliveries)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_rebalance_with_a_batch_in_flight_fails_no_batch_and_counts_once(
    engine, kafka_bootstrap, topic, run_id, caplog
):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(1200):  # keys spread the messages over the topic's three partitions
            await producer.send(topic, message(1).to_bytes(), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()
    group = f"g-{run_id}-{topic}"

    def slow_runner() -> ConsumerRunner:
        return ConsumerRunner(
            service="test", topics=[topic], group_id=group, sessions=session_factory(engine), inbox=inbox,
            handler=SlowHandler(), bootstrap_servers=kafka_bootstrap, max_batch=10,
        )  # fmt: skip

    first, second = slow_runner(), slow_runner()
    first.start()
    try:
        await wait_until(lambda: _true(first.state.processed >= 20))
        second.start()  # joins the group: partitions are revoked from `first` mid-stream
        await wait_until(lambda: _eq(counter(engine), 1200), timeout=120)
    finally:
        await second.stop()
        await first.stop()
    assert second.state.processed > 0  # the rebalance happened
    assert first.state.processed + second.state.processed == 1200
    assert not [r for r in caplog.records if "consumer batch failed" in r.getMessage()]


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"], indirect=True)
async def test_inbox_ids_older_than_the_retention_are_forgotten_and_recent_ones_kept(engine, kafka_bootstrap, topic):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, insert

    now = datetime.now(UTC)
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            insert(inbox),
            [{"event_id": f"old-{i}", "topic": topic, "processed_at": now - timedelta(days=40)} for i in range(25)]
            + [{"event_id": "recent", "topic": topic, "processed_at": now - timedelta(days=1)}],
        )
    consumer = runner(engine, kafka_bootstrap, topic, "g-prune", inbox_retention=timedelta(days=30))
    assert await consumer.prune_inbox() == 25
    async with session_factory(engine)() as session:
        left = set((await session.scalars(select(inbox.c.event_id))).all())
        assert "recent" in left and not any(i.startswith("old-") for i in left)
        assert await session.scalar(select(func.count()).select_from(inbox)) == len(left)
    assert await runner(engine, kafka_bootstrap, topic, "g-keep").prune_inbox() == 0  # no retention: keeps all
