"""The test plugin cleans up after itself on the shared broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from common.db import create_engine
from common.kafka import ensure_topics
from common.testing.plugin import delete_topics_with_prefix
from sqlalchemy import text


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_delete_topics_with_prefix_removes_only_that_prefix(kafka_bootstrap, topic_prefix):
    doomed = f"{topic_prefix}cleanup."
    kept = f"{topic_prefix}cleanup-kept"
    await ensure_topics(kafka_bootstrap, [f"{doomed}a", f"{doomed}a.dlq", kept], partitions=1)

    deleted = await delete_topics_with_prefix(kafka_bootstrap, doomed)

    assert sorted(deleted) == [f"{doomed}a", f"{doomed}a.dlq"]
    remaining = await _topics(kafka_bootstrap)
    assert kept in remaining
    assert not {t for t in remaining if t.startswith(doomed)}


async def test_delete_topics_with_prefix_warns_instead_of_failing_when_the_broker_is_gone():
    with pytest.warns(UserWarning, match="could not delete"):
        assert await delete_topics_with_prefix("127.0.0.1:1", "nothing.") == []


async def test_drop_database_drops_and_says_so_when_it_cannot(pg_admin_url, run_id):
    from common.testing.infra import drop_database
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"t{run_id}_dropme"
    admin = create_async_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    inside = create_async_engine(
        make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        with pytest.raises(DBAPIError, match="currently open database"):  # retried, then raised
            await drop_database(inside, name, attempts=2, pause=0.01)
        await inside.dispose()
        await drop_database(admin, name)
        async with admin.connect() as connection:
            assert not await connection.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name})
    finally:
        await inside.dispose()
        await drop_database(admin, name)
        await admin.dispose()


async def test_a_database_name_asked_for_twice_gives_two_databases(make_database):
    # The events and reporting suites both once named a database `migrate0003`: CI failed on it.
    first, second = await make_database("same_name"), await make_database("same_name")
    assert first != second
    for url in (first, second):
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT current_database()")) == url.rsplit("/", 1)[1].split("?")[0]
        finally:
            await engine.dispose()
