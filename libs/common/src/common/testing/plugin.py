"""pytest plugin (loaded with `-p common.testing.plugin`): real Kafka and PostgreSQL, with topic and
database names unique to the run so runs cannot see each other."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from common.auth import mint_token
from common.testing.infra import drop_database, kafka_bootstrap_servers, postgres_admin_url
from common.testing.postgres import RestartablePostgres

TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_bootstrap_servers() as servers:
        yield servers


@pytest.fixture(scope="session")
async def topic_prefix(run_id: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    """Topics named `t<run>.…`; every one of them is deleted at the end of the run, so a long-lived
    development broker does not pile up thousands of partitions (it slows its start to minutes)."""
    prefix = f"t{run_id}."
    yield prefix
    await delete_topics_with_prefix(kafka_bootstrap, prefix)


async def delete_topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        await admin.start()
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        for start in range(0, len(doomed), 200):
            await admin.delete_topics(doomed[start : start + 200], timeout_ms=30_000)
        return doomed
    except Exception as exc:  # cleanup must not fail a run whose tests passed; say so instead
        warnings.warn(f"could not delete the run's topics ({prefix}*): {exc}", stacklevel=1)
        return []
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return postgres_admin_url()


DatabaseFactory = Callable[[str], Awaitable[str]]


@pytest.fixture(scope="session")
async def make_database(pg_admin_url: str, run_id: str) -> AsyncIterator[DatabaseFactory]:
    """Creates `t<run>_<name>` and returns its URL; every database is dropped at the end of the run.
    A name asked for again in the run (two services' tests may pick the same) gets a number."""
    admin = create_async_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    async def create(name: str) -> str:
        database = base = f"t{run_id}_{name}"
        number = 1
        while database in created:
            number += 1
            database = f"{base}_{number}"
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{database}"'))
        created.append(database)
        return make_url(pg_admin_url).set(database=database).render_as_string(hide_password=False)

    yield create
    for database in created:
        await drop_database(admin, database)
    await admin.dispose()


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return TEST_SECRET


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    """token("province", "440000", "events:write") → an Authorization header value."""

    def make(kind: str, code: str, *scopes: str, ttl: int = 3600) -> str:
        return "Bearer " + mint_token(secret=TEST_SECRET, org_kind=kind, org_code=code, scopes=list(scopes), ttl=ttl)

    return make


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def read_topic(bootstrap: str, topic: str, *, expected: int, timeout: float = 30.0) -> list[Any]:
    """Read a topic from the beginning until `expected` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for rs in batch.values():
                records.extend(rs)
        # A short grace read, so extra (duplicate) records would be seen too.
        batch = await consumer.getmany(timeout_ms=300)
        for rs in batch.values():
            records.extend(rs)
    finally:
        await consumer.stop()
    return records


@pytest.fixture(scope="session")
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A PostgreSQL cluster of this session's own, for tests that stop the database (never the shared
    one: other runs use it). Started; a test that stops it starts it again."""
    postgres = RestartablePostgres()
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.remove()
