"""The relay under faults, against real brokers: a send that times out while another relay waits, a
broker outage, one relay per SQLite file, and a record too large to publish."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from common.db import create_engine, session_factory
from common.kafka import ensure_topics, new_producer
from common.outbox import OutboxRelay, install_wakeup, outbox_message
from common.outbox import stage as stage_messages
from common.testing.plugin import read_topic, wait_until
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import fresh_engine, outbox


def relay_for(engine: AsyncEngine, bootstrap: str, **kwargs: Any) -> OutboxRelay:
    kwargs.setdefault("service", f"test-{uuid.uuid4().hex[:8]}")
    return OutboxRelay(sessions=session_factory(engine), outbox=outbox, bootstrap_servers=bootstrap, **kwargs)


async def stage(engine: AsyncEngine, topic: str, key: str, versions: range) -> None:
    async with session_factory(engine)() as session, session.begin():
        for version in versions:
            message = outbox_message(source="/t", type="t", subject=key, data={"version": version})
            await stage_messages(session, outbox, [message], topic)


def versions_per_key(records: list[Any]) -> dict[str, list[int]]:
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r.key.decode()].append(json.loads(r.value)["data"]["version"])
    return per_key


def ends_in_order(versions: list[int]) -> bool:
    """True when a reader applying each record in turn (the last one wins) is never left on an older
    version: a version's last copy comes before every later version's (`v1 v2 v1 v2 v3` is at least
    once; `v1 v2 v3 v1 v2` ends on v2 although v3 was published)."""
    last_copies = list(reversed(dict.fromkeys(reversed(versions))))
    return last_copies == sorted(last_copies)


def slow_first_request(bootstrap: str, delay: float) -> Callable[[], AIOKafkaProducer]:
    """Producers whose first produce request waits `delay` seconds before it leaves (a slow link to
    a real broker): the send is still in flight when the relay's send timeout fires."""
    delayed = False

    def factory() -> AIOKafkaProducer:
        producer = new_producer(bootstrap, client_id="slow-relay", linger_ms=0)
        send = producer._sender._send_produce_req

        async def slow_send(node_id: int, batches: Any) -> Any:
            nonlocal delayed
            if not delayed:
                delayed = True
                await asyncio.sleep(delay)
            return await send(node_id, batches)

        producer._sender._send_produce_req = slow_send  # type: ignore[method-assign]
        return producer

    return factory


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_a_timed_out_send_lands_before_another_relay_takes_over(engine, kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}takeover"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    first = relay_for(
        engine, kafka_bootstrap, send_timeout=1.0, producer_factory=slow_first_request(kafka_bootstrap, 3)
    )
    standby = relay_for(engine, kafka_bootstrap, send_timeout=5.0)
    await stage(engine, topic, "k", range(1, 3))  # v1 v2
    sending = asyncio.create_task(first.publish_once())
    try:
        await asyncio.sleep(0.5)  # the first relay holds the lock; its request has not left yet
        await stage(engine, topic, "k", range(3, 4))  # v3
        standby.start()  # waits for the lock, then publishes v1 v2 v3
        with pytest.raises(TimeoutError):
            await sending
        await wait_until(lambda: _published(standby, 3), timeout=20)
        await asyncio.sleep(3)  # anything of the first relay's still under way arrives by now
        records = await read_topic(kafka_bootstrap, topic, expected=5, timeout=10)
    finally:
        sending.cancel()
        await first.stop()
        await standby.stop()
    versions = versions_per_key(records)["k"]
    assert set(versions) == {1, 2, 3}
    assert ends_in_order(versions), versions


async def _published(relay: OutboxRelay, count: int) -> bool:
    return relay.published >= count


def gauge(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_during_an_outage_the_backlog_shows_and_the_log_stays_quiet(
    engine, restartable_broker, restartable_kafka, topic_prefix, caplog
):
    topic = f"{topic_prefix}outage"
    await ensure_topics(restartable_kafka, [topic], partitions=3)
    sessions = session_factory(engine)
    relay = relay_for(engine, restartable_kafka, send_timeout=4.0)
    install_wakeup(sessions, relay.wake)
    relay.start()
    try:
        await stage(engine, topic, "before", range(1, 11))
        await wait_until(lambda: _published(relay, 10), timeout=30)
        restartable_broker.stop()
        caplog.clear()
        cpu_before, wall_before = time.process_time(), time.monotonic()
        with caplog.at_level(logging.INFO):
            for n in range(300):  # one at a time, as requests would: the relay's send is pending meanwhile
                await stage(engine, topic, f"k{n % 7}", range(n, n + 1))
            await asyncio.sleep(8)
        cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        records = list(caplog.records)
        # Counted while the relay's send hangs (before, only after a successful publish: it read 10).
        assert gauge("outbox_backlog", relay.service) == 300
    finally:
        restartable_broker.start()
        try:
            await wait_until(lambda: _published(relay, 310), timeout=90)
            await wait_until(lambda: _gauge_reads(relay.service, 0), timeout=15)  # counted every 5 s
        finally:
            await relay.stop()
    by_logger: dict[str, int] = defaultdict(int)
    for record in records:
        by_logger[record.name] += 1
    assert len(records) <= 20, dict(by_logger)
    assert any(r.name == "common.outbox.relay" and r.levelno == logging.WARNING for r in records)
    assert cpu < 0.5, f"the process used {cpu:.0%} of a core while the broker was down"


async def _gauge_reads(service: str, value: float) -> bool:
    return gauge("outbox_backlog", service) == value


async def test_one_relay_per_sqlite_file(tmp_path: Path, kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}sqlite-one-relay"
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    engines = [await fresh_engine(url), create_engine(url)]  # as two workers of `serve --workers 2` open it
    relays = [relay_for(e, kafka_bootstrap, batch_size=20, idle_poll=0.05) for e in engines]
    for relay in relays:
        relay.start()
    try:
        for n in range(0, 200, 10):
            await stage(engines[n // 10 % 2], topic, f"k{n % 3}", range(n, n + 10))
            await asyncio.sleep(0.02)
        await wait_until(lambda: _published_together(relays, 200), timeout=30)
        records = await read_topic(kafka_bootstrap, topic, expected=200)
    finally:
        for relay in relays:
            await relay.stop()
        for e in engines:
            await e.dispose()
    assert sorted(r.published for r in relays) == [0, 200]  # one publishes, the other stands by
    assert len(records) == 200
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r.key.decode()].append(json.loads(r.value)["data"]["version"])
    assert all(v == sorted(v) for v in per_key.values())


async def _published_together(relays: list[OutboxRelay], count: int) -> bool:
    return sum(r.published for r in relays) >= count


async def test_the_standby_relay_of_a_sqlite_file_takes_over_when_the_first_stops(
    tmp_path: Path, kafka_bootstrap, topic_prefix
):
    topic = f"{topic_prefix}sqlite-takeover"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    engine = await fresh_engine(url)
    first, second = (relay_for(engine, kafka_bootstrap, idle_poll=0.05) for _ in range(2))
    first.start()
    await stage(engine, topic, "k", range(1, 4))
    await wait_until(lambda: _published(first, 3), timeout=20)
    second.start()
    try:
        await first.stop()
        await stage(engine, topic, "k", range(4, 6))
        await wait_until(lambda: _published(second, 2), timeout=20)
        records = await read_topic(kafka_bootstrap, topic, expected=5)
    finally:
        await second.stop()
        await engine.dispose()
    assert versions_per_key(records)["k"] == [1, 2, 3, 4, 5]


async def test_a_record_too_large_is_quarantined_and_the_rest_published(engine, kafka_bootstrap, topic_prefix, caplog):
    topic = f"{topic_prefix}too-large-{engine.dialect.name}"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    relay = relay_for(engine, kafka_bootstrap, max_message_bytes=64 * 1024)
    await stage(engine, topic, "k", range(1, 3))
    huge = outbox_message(source="/t", type="t", subject="k", data={"version": 3, "pad": "x" * 70_000})
    async with session_factory(engine)() as session, session.begin():  # as a row written before the bound was
        await session.execute(
            insert(outbox).values(
                event_id=huge.event_id,
                topic=topic,
                key="k",
                payload=huge.payload,
                headers=None,
                created_at=datetime.now(UTC),
            )
        )
    await stage(engine, topic, "k", range(4, 6))
    try:
        with caplog.at_level(logging.ERROR, logger="common.outbox.relay"):
            assert await relay.publish_once() == 4
        records = await read_topic(kafka_bootstrap, topic, expected=4)
    finally:
        await relay.stop()
    assert versions_per_key(records)["k"] == [1, 2, 4, 5]
    assert await relay.backlog() == 0
    async with session_factory(engine)() as session:
        quarantined = (await session.execute(select(relay.dead_letters))).mappings().all()
    assert [(q["event_id"], q["key"], q["topic"]) for q in quarantined] == [(huge.event_id, "k", topic)]
    assert "too large" in quarantined[0]["reason"]
    assert json.loads(quarantined[0]["payload"])["id"] == huge.event_id  # kept whole, to publish by hand
    assert REGISTRY.get_sample_value("outbox_dead_letters_total", {"service": relay.service}) == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR and huge.event_id in r.getMessage()]


async def test_a_record_the_broker_refuses_as_too_large_is_quarantined(engine, kafka_bootstrap, topic_prefix):
    # The topic takes at most 4 KiB per batch: a 5 KiB record passes the relay's own bound, the broker refuses it.
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"{topic_prefix}broker-refuses-{engine.dialect.name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "4096"})]
        )
    finally:
        await admin.close()
    relay = relay_for(engine, kafka_bootstrap, send_timeout=10.0)
    await stage(engine, topic, "k", range(1, 2))
    async with session_factory(engine)() as session, session.begin():
        message = outbox_message(source="/t", type="t", subject="k", data={"version": 2, "pad": "x" * 5000})
        await stage_messages(session, outbox, [message], topic)
    await stage(engine, topic, "k", range(3, 4))
    try:
        published = 0
        deadline = time.monotonic() + 30
        while await relay.backlog() and time.monotonic() < deadline:
            try:
                published += await relay.publish_once()
            except Exception:  # a failed cycle is retried, as the relay's loop does
                await asyncio.sleep(0.2)
        records = await read_topic(kafka_bootstrap, topic, expected=2)
    finally:
        await relay.stop()
    assert await relay.backlog() == 0
    versions = versions_per_key(records)["k"]
    assert 2 not in versions and ends_in_order(versions) and set(versions) == {1, 3}
    async with session_factory(engine)() as session:
        reasons = (await session.execute(select(relay.dead_letters.c.reason))).scalars().all()
        assert await session.scalar(select(func.count()).select_from(relay.dead_letters)) == 1
    assert "TooLarge" in reasons[0]
