"""Several reporting processes: a change consumed by one reaches every process's stream (PostgreSQL
LISTEN/NOTIFY), only once committed, and the listener survives losing its connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from common.db import create_engine, session_factory
from reporting.adapters.postgresql import announce
from reporting.stream.changes_channel import ChangeListener
from sqlalchemy import text
from sse import read_events
from support import EVENTS, event_data, event_message, prepare, running_service


async def test_a_process_that_consumes_nothing_streams_what_another_consumed(
    make_database, kafka_bootstrap, topic_prefix, jwt_secret, token
):
    settings = await prepare(
        make_database, "rep_channel", kafka_bootstrap, f"{topic_prefix}channel.", jwt_secret, stream_coalesce_ms=50
    )
    auth = token("hq", "HQ", "reporting:read")
    api_only = settings.model_copy(update={"consumer_enabled": False})
    async with running_service(settings, auth) as consumer, running_service(api_only, auth) as reader:
        seen: list[dict] = []

        async def read_stream() -> None:
            async with (
                reader.client(timeout=None) as client,
                client.stream("GET", "/v1/metrics/stream", params={"year": 2026}, headers=reader.headers) as response,
            ):
                assert response.status_code == 200
                async for message in read_events(response):
                    if message.event == "metrics" and message.json()["region"] == "cn:630000":
                        seen.append(message.json())
                        return

        stream = asyncio.create_task(read_stream())
        await asyncio.sleep(0.5)  # subscribed
        await consumer.producer.send(
            EVENTS, event_message(event_data(host_province="630000", start_date="2026-04-01", participants=42))
        )
        await asyncio.wait_for(stream, 20)
        assert seen[0]["events"]["participants"] == 42
        assert not reader.app.state.runtime.consumers  # it consumed nothing itself


async def test_announcements_arrive_at_commit_only_and_after_a_lost_connection(make_database):
    engine = create_engine(await make_database("rep_listener"))
    sessions = session_factory(engine)
    received: list[str] = []
    reconnected: list[float] = []
    listener = ChangeListener(engine, received.extend, lambda: reconnected.append(time.monotonic()), check_interval=0.2)
    listener.start()
    try:
        await listener.wait_listening()
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                await announce(session, ["cn:110000"])
                raise RuntimeError("rolled back")
        async with sessions() as session, session.begin():
            await announce(session, ["cn:440000", "all"])
            await asyncio.sleep(0.3)
            assert received == []  # not before the commit
        await _until(lambda: len(received) == 2)
        assert sorted(received) == ["all", "cn:440000"]  # and never the rolled-back one

        async with engine.connect() as connection:  # the database drops the listening connection
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND (query LIKE 'LISTEN%' OR query LIKE 'SELECT 1%')"
                )
            )
        await _until(lambda: listener.reconnects >= 1)
        assert reconnected  # the broadcaster is told to republish everything it may have missed
        await listener.wait_listening()
        async with sessions() as session, session.begin():
            await announce(session, ["group:eu"])
        await _until(lambda: "group:eu" in received)
    finally:
        await listener.stop()
        await engine.dispose()


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
