"""Benchmark of the outbox relay on this machine, beside raw aiokafka in the same run.

1. Throughput: N messages already committed in the outbox (PostgreSQL), drained by the relay, versus
   a raw aiokafka producer sending the same N payloads with the same batch settings.
2. Latency at a fixed offered load (500 messages/s, below saturation): a writer commits one change +
   its outbox row per transaction; a consumer timestamps arrival. Commit-to-consumed bounds
   commit-to-published from above (it adds the consumer's fetch).

Usage: uv run python bench/plumbing/relay.py [--messages 50000] [--rate 500] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
import uuid

from aiokafka import AIOKafkaConsumer
from common.db import create_engine, new_metadata, session_factory, without_loopback_tls
from common.kafka import ensure_topics, new_producer
from common.outbox import OutboxRelay, install_wakeup, outbox_message, outbox_table, stage
from common.testing.infra import drop_database, kafka_bootstrap_servers, postgres_admin_url
from sqlalchemy import Column, Integer, String, Table, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

metadata = new_metadata()
outbox = outbox_table(metadata)
changes = Table("changes", metadata, Column("id", Integer, primary_key=True), Column("note", String(100)))


def payload(n: int) -> str:
    message = outbox_message(
        source="/bench",
        type="exchange.bench.recorded",
        subject=f"agg-{n % 1000}",
        data={"seq": n, "title": "International Conference on Materials " * 4, "version": 1},
    )
    return message.payload


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def raw_producer(bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(messages/s, CPU seconds), both over the sending only (not building the payloads)."""
    producer = new_producer(bootstrap, client_id="bench-raw")
    await producer.start()
    payloads = [(payload(i).encode(), f"agg-{i % 1000}".encode()) for i in range(n)]
    started, cpu_started = time.perf_counter(), cpu()
    for start in range(0, n, 1000):  # the relay's batch size, awaited per batch like the relay
        futures = [await producer.send(topic, value, key=key) for value, key in payloads[start : start + 1000]]
        await asyncio.gather(*futures)
    elapsed, used = time.perf_counter() - started, cpu() - cpu_started
    await producer.stop()
    return n / elapsed, used


async def relay_drain(url: str, bootstrap: str, topic: str, n: int) -> tuple[float, float]:
    """(messages/s, CPU seconds), both over the draining only (not filling the outbox)."""
    engine = create_engine(url)
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    async with engine.begin() as connection:
        for start in range(0, n, 5000):
            await connection.execute(
                insert(outbox),
                [
                    {
                        "event_id": str(uuid.uuid4()),
                        "topic": topic,
                        "key": f"agg-{i % 1000}",
                        "payload": payload(i),
                        "headers": json.dumps({"content-type": "application/cloudevents+json"}),
                        "created_at": now,
                    }
                    for i in range(start, min(start + 5000, n))
                ],
            )
    relay = OutboxRelay(service="bench", sessions=session_factory(engine), outbox=outbox, bootstrap_servers=bootstrap)
    await relay._ensure_producer()  # connect before timing, as the raw producer does
    started, cpu_started = time.perf_counter(), cpu()
    while relay.published < n:
        await relay.publish_once()
    elapsed, used = time.perf_counter() - started, cpu() - cpu_started
    await relay.stop()
    await engine.dispose()
    return n / elapsed, used


async def latency(url: str, bootstrap: str, topic: str, rate: int, seconds: int) -> list[float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    # As ServiceRuntime does: the relay on a connection of its own.
    relay_engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    relay = OutboxRelay(
        service="bench", sessions=session_factory(relay_engine), outbox=outbox, bootstrap_servers=bootstrap
    )
    install_wakeup(sessions, relay.wake)
    relay.start()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
        group_id=None,
    )
    await consumer.start()
    await asyncio.sleep(1)
    committed: dict[str, float] = {}
    arrived: dict[str, float] = {}

    async def consume() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    arrived[json.loads(r.value)["id"]] = now

    reader = asyncio.create_task(consume())
    total = rate * seconds
    started = time.perf_counter()
    for n in range(total):
        due = started + n / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        async with sessions() as session, session.begin():
            await session.execute(insert(changes).values(note=f"change {n}"))
            message = outbox_message(
                source="/bench", type="exchange.bench.recorded", subject=f"agg-{n % 100}", data={"seq": n}
            )
            await stage(session, outbox, [message], topic)
        committed[message.event_id] = time.perf_counter()
    deadline = time.perf_counter() + 10
    while len(arrived) < total and time.perf_counter() < deadline:  # noqa: ASYNC110 - bounded wait
        await asyncio.sleep(0.05)
    reader.cancel()
    await consumer.stop()
    await relay.stop()
    await relay_engine.dispose()
    await engine.dispose()
    return [(arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    admin = create_async_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    database = f"bench_{run}"
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{database}"'))
    # As the services connect (common.settings): no TLS to a loopback PostgreSQL.
    url = without_loopback_tls(postgres_admin_url().rsplit("/", 1)[0] + f"/{database}")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    try:
        with kafka_bootstrap_servers() as bootstrap:
            topics = [f"bench-{run}-raw", f"bench-{run}-relay", f"bench-{run}-latency"]
            await ensure_topics(bootstrap, topics, partitions=3)
            raw, raw_cpu = await raw_producer(bootstrap, topics[0], args.messages)
            relayed, relay_cpu = await relay_drain(url, bootstrap, topics[1], args.messages)
            samples = await latency(url, bootstrap, topics[2], args.rate, args.seconds)
    finally:
        await drop_database(admin, database)
        await admin.dispose()
    samples.sort()
    print(f"raw aiokafka producer : {raw:10,.0f} msg/s  ({raw_cpu / args.messages * 1e6:.0f} CPU-ms/1000 msgs)")
    print(f"outbox relay          : {relayed:10,.0f} msg/s  ({relay_cpu / args.messages * 1e6:.0f} CPU-ms/1000 msgs)")
    print(f"ratio relay/raw       : {relayed / raw:10.2f}   (target >= 0.5)")
    print(f"commit->consumed at {args.rate}/s offered, {len(samples)} of {args.rate * args.seconds} received:")
    print(
        f"  p50 {statistics.median(samples):.1f} ms  p99 {samples[int(len(samples) * 0.99) - 1]:.1f} ms  "
        f"max {samples[-1]:.1f} ms   (target p99 <= 20 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
