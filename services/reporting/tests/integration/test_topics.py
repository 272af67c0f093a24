"""Reporting reads the three services' topics and owns their dead-letter topics: it reports a source topic
that would drop data (it is its owner's to change) and keeps every dead letter. Real broker."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from common.migrations import upgrade_async
from common.testing.topics import create_topic_with, topic_configs
from prometheus_client import REGISTRY
from reporting.config import ReportingSettings
from support import SERVICE_DIR, running_service

SEVEN_DAYS_MS = "604800000"


async def test_a_source_topic_that_drops_data_is_reported_and_left_to_its_owner(
    make_database: Any, kafka_bootstrap: str, topic_prefix: str, jwt_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_database("rep_topics")
    await upgrade_async(url, SERVICE_DIR)
    settings = ReportingSettings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"{topic_prefix}reptopics.",
        topic_partitions=3,
        jwt_secret=jwt_secret,
        environment="test",
        consumer_group=f"reporting-{uuid.uuid4().hex[:8]}",
    )
    partners = settings.topic("exchange.partners.v1")
    # as an older partners service left it, with a stock broker's retention
    await create_topic_with(kafka_bootstrap, partners, {"retention.ms": SEVEN_DAYS_MS})

    with caplog.at_level(logging.WARNING):
        async with running_service(settings, "Bearer unused") as service, service.client() as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert list(ready.json()["topic_retention"]["drop_data"]) == [partners]
    assert REGISTRY.get_sample_value("kafka_topic_drops_data", {"service": "reporting", "topic": partners}) == 1
    assert any(r.levelno == logging.WARNING and partners in r.getMessage() for r in caplog.records)
    assert (await topic_configs(kafka_bootstrap, partners))["cleanup.policy"] == "delete"  # its owner's to switch
    events = settings.topic("exchange.events.v1")
    assert (await topic_configs(kafka_bootstrap, events))["cleanup.policy"] == "compact"  # created as its owner would
    dead_letters = await topic_configs(kafka_bootstrap, f"{partners}.dlq")
    assert (dead_letters["cleanup.policy"], dead_letters["retention.ms"]) == ("delete", "-1")
