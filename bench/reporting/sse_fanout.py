"""2,000 SSE subscribers on one reporting process: every subscriber gets every update; memory per
connection; how long the fan-out of one message takes across all subscribers.

    uv run python bench/reporting/sse_fanout.py --subscribers 2000 --updates 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.auth import mint_token
from harness import (
    PROVINCES,
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
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=40, help="events produced, one every --interval seconds")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    rid = run_id()
    prefix = f"fan{rid}."
    topics = await make_topics(prefix)
    async with scratch_database(f"bench_fan_{rid}") as url:
        env = {
            "REPORTING_DATABASE_URL": url,
            "EXCHANGE_JWT_SECRET": SECRET,
            "EXCHANGE_ENVIRONMENT": "test",
            "EXCHANGE_TOPIC_PREFIX": prefix,
            "REPORTING_CONSUMER_GROUP": f"fan-{rid}",
            "REPORTING_LOG_LEVEL": "WARNING",
        }
        reporting = Service("reporting", env, 18204)
        await reporting.start(migrate=False)
        try:
            await run(args, reporting, topics[1])
        finally:
            await reporting.stop()


async def run(args: argparse.Namespace, reporting: Service, events_topic: str) -> None:
    import random

    from aiokafka import AIOKafkaProducer

    token = mint_token(secret=SECRET, org_kind="hq", org_code="HQ", scopes=["reporting:read"])
    headers = {"Authorization": f"Bearer {token}"}
    await asyncio.sleep(1)
    rss_before = reporting.rss_kib()
    clients = [RawSSE("127.0.0.1", reporting.port, "/v1/metrics/stream", headers) for _ in range(args.subscribers)]
    started = time.perf_counter()
    for i, client in enumerate(clients):
        client.keep_data = i == 0  # one subscriber keeps the payloads to check the figures
        client.start()
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 120)
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(2)
    rss_after = reporting.rss_kib()

    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9092", acks="all", enable_idempotence=True)
    await producer.start()
    rng = random.Random(3)
    produced_at: list[float] = []
    try:
        for i in range(args.updates):
            data = event_payload(f"fan-{i}", 1, rng)
            data["host_province"] = data["organizer"]["code"] = PROVINCES[i % len(PROVINCES)]
            await producer.send_and_wait(events_topic, envelope_bytes(data), key=data["id"].encode())
            produced_at.append(time.perf_counter())
            await asyncio.sleep(args.interval)
    finally:
        await producer.stop()
    await asyncio.sleep(3)
    rss_loaded = reporting.rss_kib()
    for client in clients:
        await client.stop()

    reference = [m[1] for m in clients[0].messages]
    complete = sum(1 for c in clients if [m[1] for m in c.messages] == reference)
    arrivals: dict[str, list[float]] = defaultdict(list)
    for client in clients:
        for arrival, message_id, _data in client.messages:
            arrivals[message_id].append(arrival)
    spread = [(max(ts) - min(ts)) * 1000 for ts in arrivals.values()]
    final_all = None
    for _arrival, _id, data in clients[0].messages:
        obj = json.loads(data)
        if obj["region"] == "all":
            final_all = obj["events"]["count"]
    per_connection = (rss_after - rss_before) / args.subscribers
    print(f"subscribers: {args.subscribers} connected in {connect_seconds:.1f}s")
    print(f"server RSS: {rss_before / 1024:.1f} MiB idle, {rss_after / 1024:.1f} MiB with every subscriber connected, "
          f"{rss_loaded / 1024:.1f} MiB after the updates → {per_connection:.1f} KiB per connection")  # fmt: skip
    print(f"updates produced: {args.updates}; messages per subscriber: {len(reference)}; final `all` count {final_all}")
    print(f"subscribers with every message, in order: {complete}/{args.subscribers}")
    print(f"fan-out spread (first to last subscriber, per message): {summary(spread)}")


if __name__ == "__main__":
    asyncio.run(removing_topics(main()))
