"""The topic the service owns keeps every aggregate's latest state forever: created compacted, an older
delete-policy topic switched to compact at start-up, and with EXCHANGE_MANAGE_TOPICS=false a topic that
would drop data left alone but reported (log, metric, /readyz). Real broker; configs read back through
the broker's own DescribeConfigs, not through the code under test."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from common.testing.topics import create_topic_with, topic_configs
from prometheus_client import REGISTRY

from ..conftest import migrated_database, running_service

SEVEN_DAYS_MS = str(7 * 24 * 3600 * 1000)  # a stock broker's log.retention.hours=168


def drops_data_gauge(topic: str) -> float | None:
    return REGISTRY.get_sample_value("kafka_topic_drops_data", {"service": "events", "topic": topic})


async def test_the_topic_the_service_creates_is_compacted(service: Any) -> None:
    configs = await topic_configs(service.bootstrap, service.topic)
    assert configs["cleanup.policy"] == "compact"
    assert configs["min.insync.replicas"] == "1"
    assert drops_data_gauge(service.topic) == 0
    ready = await service.client.get("/readyz")
    assert ready.json()["topic_retention"] == {"checked": True, "drop_data": {}}


async def test_an_existing_delete_policy_topic_is_switched_to_compact_at_start_up(
    make_database: Any, settings_factory: Any, kafka_bootstrap: str
) -> None:
    settings = settings_factory(await migrated_database(make_database, "ev_topics_old"), "topics_old")
    topic = settings.topic("exchange.events.v1")
    # segment.bytes stands for any setting an operator gave the topic: switching the policy keeps it.
    await create_topic_with(kafka_bootstrap, topic, {"retention.ms": SEVEN_DAYS_MS, "segment.bytes": "1048576"})
    assert (await topic_configs(kafka_bootstrap, topic))["cleanup.policy"] == "delete"

    async for running in running_service(settings, kafka_bootstrap):
        configs = await topic_configs(kafka_bootstrap, topic)
        assert configs["cleanup.policy"] == "compact"
        assert configs["segment.bytes"] == "1048576"
        assert drops_data_gauge(topic) == 0
        assert (await running.client.get("/readyz")).json()["topic_retention"]["drop_data"] == {}


async def test_with_manage_topics_off_a_topic_that_drops_data_is_left_alone_and_reported(
    make_database: Any, settings_factory: Any, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_factory(
        await migrated_database(make_database, "ev_topics_unmanaged"), "topics_unmanaged", manage_topics=False
    )
    topic = settings.topic("exchange.events.v1")
    await create_topic_with(kafka_bootstrap, topic, {"retention.ms": SEVEN_DAYS_MS})

    with caplog.at_level(logging.WARNING):
        async for running in running_service(settings, kafka_bootstrap):
            configs = await topic_configs(kafka_bootstrap, topic)
            assert (configs["cleanup.policy"], configs["retention.ms"]) == ("delete", SEVEN_DAYS_MS)
            assert drops_data_gauge(topic) == 1
            ready = await running.client.get("/readyz")
            assert ready.status_code == 200  # the data at risk is the operator's to fix, not a reason to stop serving
            reason = ready.json()["topic_retention"]["drop_data"][topic]
            assert "retention.ms=604800000" in reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and topic in r.getMessage()]
    assert warnings, "no warning names the topic that drops data"
