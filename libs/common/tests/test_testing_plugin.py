"""The test plugin cleans up after itself on the shared broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from common.kafka import ensure_topics
from common.testing.plugin import delete_topics_with_prefix


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
