"""`reporting dlq list` reads the dead-letter topics of reporting's source topics (real broker)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from common.kafka import ensure_topics
from common.testing.messages import cloud_event
from reporting.entrypoints.cli import main


def test_reporting_lists_its_dead_letters(monkeypatch, capsys, kafka_bootstrap, topic_prefix, tmp_path) -> None:
    prefix = f"{topic_prefix}dlqcli."
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("REPORTING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/r.db")
    monkeypatch.setenv("REPORTING_ENVIRONMENT", "development")
    dlq = f"{prefix}exchange.events.v1.dlq"
    event = cloud_event(source="/events", type="exchange.event.recorded", subject="e1", data={"version": 1})

    async def dead_letter() -> None:
        await ensure_topics(kafka_bootstrap, [dlq], partitions=1)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            headers = [("dlq.reason", b"invalid-data"), ("dlq.error", b"InvalidMessage: data.organizer missing")]
            await producer.send_and_wait(dlq, event.to_bytes(), key=b"e1", headers=headers)
        finally:
            await producer.stop()

    asyncio.run(dead_letter())
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "list"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split("\t")[:5] == [f"{dlq}:0:0", "e1", event.id, "exchange.event.recorded", "invalid-data"]
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "replay", "unknown-id"])
    assert exited.value.code == 2
