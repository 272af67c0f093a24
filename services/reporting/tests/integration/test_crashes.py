"""Killing the consumer process (SIGKILL) between the database commit and the offset commit, and
inside the batch's transaction: nothing is lost and nothing is counted twice."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

from common.db import create_engine, session_factory
from common.kafka.consumer import ConsumerRunner
from common.testing.plugin import wait_until
from reporting.adapters.tables import inbox
from reporting.adapters.writers import projection_writer
from reporting.projections.handler import ProjectionHandler
from reporting.read.queries import region_objects
from sqlalchemy import func, select
from support import EVENTS, Producer, event_data, event_message, prepare

SCRIPT = Path(__file__).with_name("crashing_consumer.py")
PROVINCES = ["110000", "310000", "440000", "510000"]


def scenario(seed: int) -> tuple[list, dict[str, tuple[int, int]]]:
    """300 events, 80 updated (moved province, participants changed), 30 cancelled, and the expected
    (count, participants) per province in 2025."""
    rng = random.Random(seed)
    messages, final = [], {}
    for _ in range(300):
        data = event_data(
            host_province=rng.choice(PROVINCES), participants=rng.randint(1, 500), start_date="2025-03-01"
        )
        messages.append(event_message(data))
        final[data["id"]] = data
    for event_id in rng.sample(sorted(final), 80):
        data = {
            **final[event_id],
            "version": 2,
            "host_province": rng.choice(PROVINCES),
            "participants": rng.randint(1, 500),
        }
        messages.append(event_message(data))
        final[event_id] = data
    for event_id in rng.sample(sorted(final), 30):
        data = {**final[event_id], "version": final[event_id]["version"] + 1, "status": "cancelled"}
        messages.append(event_message(data))
        final[event_id] = data
    expected = {p: (0, 0) for p in PROVINCES}
    for data in final.values():
        if data["status"] != "cancelled":
            count, participants = expected[data["host_province"]]
            expected[data["host_province"]] = (count + 1, participants + data["participants"])
    return messages, expected


async def run_until_killed(settings, point: str) -> int:
    env = {
        **os.environ,
        "REPORTING_DATABASE_URL": settings.database_url,
        "REPORTING_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REPORTING_TOPIC_PREFIX": settings.topic_prefix,
        "REPORTING_CONSUMER_GROUP": settings.consumer_group,
        "REPORTING_MAX_BATCH": "40",
        "REPORTING_ENVIRONMENT": "test",
    }
    process = await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), point, env=env)
    return await asyncio.wait_for(process.wait(), 60)


async def figures(sessions) -> dict[str, tuple[int, int]]:
    async with sessions() as session:
        objects = await region_objects(session, [f"cn:{p}" for p in PROVINCES], 2025)
    return {o["region"][3:]: (o["events"]["count"], o["events"]["participants"]) for o in objects}


async def test_sigkill_before_and_after_the_database_commit(make_database, kafka_bootstrap, topic_prefix, jwt_secret):
    settings = await prepare(make_database, "rep_crash", kafka_bootstrap, f"{topic_prefix}crash.", jwt_secret)
    messages, expected = scenario(7)
    async with Producer(kafka_bootstrap, settings.topic_prefix) as producer:
        await producer.send(EVENTS, *messages)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)

    async def inbox_size() -> int:
        async with sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(inbox)) or 0)

    try:
        assert await run_until_killed(settings, "before-db-commit") == -9
        assert await inbox_size() == 0  # the killed transaction left nothing behind
        assert await run_until_killed(settings, "after-db-commit") == -9
        committed = await inbox_size()
        assert 0 < committed <= 40  # one batch committed, its offsets never were
        survivor = ConsumerRunner(
            service="reporting-test",
            topics=settings.source_topics(),
            group_id=settings.consumer_group,
            sessions=sessions,
            inbox=inbox,
            handler=ProjectionHandler(projection_writer),
            bootstrap_servers=kafka_bootstrap,
            max_batch=40,
        )
        survivor.start()
        try:

            async def caught_up() -> bool:
                return survivor.state.processed + survivor.state.duplicates >= len(messages)

            await wait_until(caught_up, 60)
        finally:
            await survivor.stop()
        assert survivor.state.duplicates == committed  # the committed batch came again and was skipped
        assert await figures(sessions) == expected
    finally:
        await engine.dispose()
