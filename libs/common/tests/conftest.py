"""A tiny schema (a counter table, the outbox and the inbox) to exercise the plumbing on real
PostgreSQL, SQLite and Kafka. Services test their own migrations; here the lib's tables suffice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from common.db import create_engine, new_metadata
from common.inbox import inbox_table
from common.kafka import ensure_topics
from common.outbox import outbox_table
from common.testing.infra import RestartableBroker
from sqlalchemy import Column, Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
counters = Table(
    "counters", metadata, Column("key", String(64), primary_key=True), Column("value", Integer, nullable=False)
)


async def fresh_engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return engine


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, make_database, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        url = await make_database(f"common_{request.node.name.split('[')[0][-20:]}_{id(request) % 100000}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/plumbing.db"
    engine = await fresh_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def topic(kafka_bootstrap: str, topic_prefix: str, request: pytest.FixtureRequest) -> str:
    name = f"{topic_prefix}{request.node.name.replace('[', '-').replace(']', '')[:60]}"
    await ensure_topics(kafka_bootstrap, [name, f"{name}.dlq"], partitions=3)
    return name


@pytest.fixture(scope="session")
def restartable_broker() -> Iterator[RestartableBroker]:
    broker = RestartableBroker.on_free_ports()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        broker.remove_files()


@pytest.fixture(scope="session")
def restartable_kafka(restartable_broker: RestartableBroker) -> str:
    return restartable_broker.bootstrap
