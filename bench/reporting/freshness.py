"""Freshness: from `POST /v1/events` answered (events service) to the SSE message for the event's
region (reporting service), at a fixed offered load below saturation.

    uv run python bench/reporting/freshness.py --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.auth import mint_token
from harness import (
    BOOTSTRAP,
    PROVINCES,
    TOPIC_PARTITIONS,
    RawHTTPPool,
    RawSSE,
    Service,
    envelope_bytes,
    event_payload,
    make_topics,
    removing_topics,
    run_id,
    scratch_database,
    summary,
)

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200.0, help="offered load, events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--coalesce-ms", type=int, default=150)
    parser.add_argument("--partitions", type=int, default=TOPIC_PARTITIONS, help="per topic (the services' default)")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="produce exchange.event.recorded CloudEvents to Kafka instead of POSTing to the events service "
        "(reporting's share of the freshness alone: from the broker's ack to the SSE message)",
    )
    args = parser.parse_args()
    rid = run_id()
    prefix = f"fresh{rid}."
    await make_topics(prefix, args.partitions)
    common = {"EXCHANGE_JWT_SECRET": SECRET, "EXCHANGE_ENVIRONMENT": "test", "EXCHANGE_TOPIC_PREFIX": prefix}
    async with (
        scratch_database(f"bench_fresh_ev_{rid}", migrate=False) as events_url,
        scratch_database(f"bench_fresh_rep_{rid}") as reporting_url,
    ):
        events = Service("events", {**common, "EVENTS_DATABASE_URL": events_url, "EVENTS_LOG_LEVEL": "WARNING"}, 18102)
        reporting = Service(
            "reporting",
            {
                **common,
                "REPORTING_DATABASE_URL": reporting_url,
                "REPORTING_CONSUMER_GROUP": f"fresh-{rid}",
                "REPORTING_STREAM_COALESCE_MS": str(args.coalesce_ms),
                "REPORTING_LOG_LEVEL": "WARNING",
            },
            18104,
        )
        if not args.direct:
            await events.start()
        await reporting.start(migrate=False)
        try:
            await run(args, events, reporting, f"{prefix}exchange.events.v1")
        finally:
            if not args.direct:
                await events.stop()
            await reporting.stop()


async def run(args: argparse.Namespace, events: Service, reporting: Service, topic: str) -> None:
    reader = mint_token(secret=SECRET, org_kind="hq", org_code="HQ", scopes=["reporting:read"])
    stream = RawSSE("127.0.0.1", reporting.port, "/v1/metrics/stream", {"Authorization": f"Bearer {reader}"})
    stream.start()
    await asyncio.wait_for(stream.connected.wait(), 20)
    await asyncio.sleep(2)  # the consumer has joined its group
    tokens = {
        p: "Bearer " + mint_token(secret=SECRET, org_kind="province", org_code=p, scopes=["events:write"])
        for p in PROVINCES
    }
    rng = random.Random(5)
    answered: list[tuple[float, str, int]] = []  # (answered at, province, n-th answered for it)
    per_province: dict[str, int] = defaultdict(int)
    errors = 0
    pool = RawHTTPPool("127.0.0.1", events.port, 64)
    producer = None
    if args.direct:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=1)
        await producer.start()
    else:
        await pool.open()

    async def post(i: int, province: str, measured: bool) -> None:
        nonlocal errors
        body = {
            "external_ref": f"fresh-{i}",
            "title": "Freshness probe",
            "type": "forum",
            "start_date": "2025-05-01",
            "end_date": "2025-05-02",
            "host_country": "CN",
            "host_province": province,
            "city": "X",
            "participants": 10,
            "foreign_participants": 1,
            "papers": 0,
            "countries": [rng.choice(["DE", "FR", "JP", "TH"])],
        }
        if producer is not None:
            data = {**event_payload(str(uuid.uuid4()), 1, rng), "host_province": province, "start_date": "2025-05-01"}
            data["organizer"] = {"kind": "province", "code": province}
            await producer.send_and_wait(topic, envelope_bytes(data), key=data["id"].encode())
            status = 201
        else:
            status, _ = await pool.request(
                "POST", "/v1/events", json.dumps(body).encode(), {"Authorization": tokens[province]}
            )
        now = time.perf_counter()
        if status != 201:
            errors += 1
            return
        per_province[province] += 1
        if measured:
            answered.append((now, province, per_province[province]))

    total = int(args.rate * (args.seconds + args.warmup))
    warm = int(args.rate * args.warmup)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(i, PROVINCES[i % len(PROVINCES)], i >= warm)))
    await asyncio.gather(*tasks)
    offered = total / (time.perf_counter() - start)
    await pool.close()
    if producer is not None:
        await producer.stop()
    await asyncio.sleep(3)
    await stream.stop()

    arrivals: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for arrival, _id, data in stream.messages:
        obj = json.loads(data)
        arrivals[obj["region"]].append((arrival, obj["events"]["count"]))
    latencies, missing = [], 0
    for answered_at, province, nth in answered:
        seen = next((t for t, count in arrivals[f"cn:{province}"] if count >= nth and t >= answered_at - 1), None)
        if seen is None:
            missing += 1
            continue
        latencies.append(max(seen - answered_at, 0.0) * 1000)
    print(f"offered load {offered:.0f} events/s for {args.seconds:.0f}s (+{args.warmup:.0f}s warm-up), errors {errors}")
    print(f"SSE messages received: {len(stream.messages)}; events without a message: {missing}")
    print(f"freshness POST answered → SSE message for its province: {summary(latencies)}")


if __name__ == "__main__":
    asyncio.run(removing_topics(main()))
