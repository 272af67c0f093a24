"""`reporting serve --workers 2`: two processes share the partitions, and a stream served by either
shows every change (PostgreSQL LISTEN/NOTIFY between them)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from common.testing.live import free_port
from common.testing.plugin import wait_until
from sse import read_events
from support import EVENTS, Producer, event_data, event_message, prepare


async def test_two_workers_share_the_partitions_and_each_stream_sees_every_change(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    settings = await prepare(make_database, "rep_workers", kafka_bootstrap, f"{topic_prefix}workers.", jwt_secret)
    port = free_port()
    env = {
        **os.environ,
        **{f"REPORTING_{k.upper()}": str(v) for k, v in settings.model_dump(include={
            "database_url", "kafka_bootstrap_servers", "topic_prefix", "jwt_secret", "environment", "consumer_group"
        }).items()},
        "REPORTING_STREAM_COALESCE_MS": "50",
    }  # fmt: skip
    cli = str(Path(sys.executable).parent / "reporting")
    process = await asyncio.create_subprocess_exec(
        cli, "serve", "--workers", "2", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": token("hq", "HQ", "reporting:read")}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:

        async def two_members() -> bool:
            try:
                described = await admin.describe_consumer_groups([settings.consumer_group])
            except Exception:
                return False
            group = described[0].to_object()["groups"][0] if described else {}
            return len(group.get("members", [])) == 2 and group.get("state") == "Stable"

        await wait_until(two_members, 60)

        provinces = ["110000", "310000", "440000", "510000", "650000", "120000", "320000", "330000"]
        final: dict[str, int] = {}
        async with httpx.AsyncClient(base_url=base, timeout=None) as client:

            async def read_until_complete() -> None:
                async with client.stream(
                    "GET", "/v1/metrics/stream", params={"year": 2026}, headers=headers
                ) as response:
                    assert response.status_code == 200
                    async for message in read_events(response):
                        if message.event == "metrics":
                            region = message.json()
                            final[region["region"]] = region["events"]["count"]
                        if all(final.get(f"cn:{p}") == 3 for p in provinces):
                            return

            stream = asyncio.create_task(read_until_complete())
            await asyncio.sleep(1.0)  # subscribed
            messages = [
                event_message(event_data(host_province=p, start_date="2026-05-01")) for p in provinces for _ in range(3)
            ]
            async with Producer(kafka_bootstrap, settings.topic_prefix) as producer:
                await producer.send(EVENTS, *messages)
            await asyncio.wait_for(stream, 30)
        assert Counter(final[f"cn:{p}"] for p in provinces) == {3: len(provinces)}
    finally:
        await admin.close()
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
