"""Topic configuration: which settings would drop data (unit), what topics are created with and what an
owner changes on an existing one (real broker, configs read back through DescribeConfigs)."""

from __future__ import annotations

import pytest
from common.db import session_factory
from common.kafka.admin import data_loss, ensure_topics, topic_config, topics_dropping_data
from common.runtime import ServiceRuntime
from common.settings import ServiceSettings
from common.testing.plugin import wait_until
from common.testing.topics import create_topic_with, topic_configs
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import RestartableBroker

SEVEN_DAYS_MS = "604800000"


@pytest.mark.parametrize(
    ("config", "drops"),
    [
        ({"cleanup.policy": "compact", "retention.ms": SEVEN_DAYS_MS}, None),  # retention does not apply
        ({"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}, None),
        (
            {"cleanup.policy": "delete", "retention.ms": SEVEN_DAYS_MS},
            f"cleanup.policy=delete with retention.ms={SEVEN_DAYS_MS}",
        ),
        (
            {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "1073741824"},
            "retention.bytes=1073741824",
        ),
        (
            {"cleanup.policy": "compact,delete", "retention.ms": "86400000"},
            "cleanup.policy=compact,delete with retention.ms",
        ),
        ({"cleanup.policy": "delete", "retention.ms": "0"}, "retention.ms=0"),  # zero is finite: everything goes
        ({}, f"retention.ms={SEVEN_DAYS_MS}"),  # nothing said: Kafka's own defaults, which expire after 7 days
        ({"cleanup.policy": "delete", "retention.ms": None}, f"retention.ms={SEVEN_DAYS_MS}"),
    ],
)
def test_data_loss_names_what_would_delete_messages(config: dict[str, str | None], drops: str | None) -> None:
    reason = data_loss(config)
    if drops is None:
        assert reason is None
    else:
        assert reason is not None and drops in reason


def test_the_configurations_given_to_topics_keep_everything() -> None:
    assert topic_config("exchange.events.v1", min_insync_replicas=2) == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
    }
    assert topic_config("exchange.events.v1.dlq")["cleanup.policy"] == "delete"
    for topic in ("exchange.events.v1", "exchange.events.v1.dlq"):
        assert data_loss(topic_config(topic)) is None


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="MIN_INSYNC"):
        ServiceSettings(environment="test", topic_replication_factor=1, topic_min_insync_replicas=2)
    settings = ServiceSettings(environment="test", topic_replication_factor=3, topic_min_insync_replicas=2)
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)


def test_topic_settings_are_read_from_the_shared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_MANAGE_TOPICS", "false")
    monkeypatch.setenv("EXCHANGE_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("EXCHANGE_TOPIC_MIN_INSYNC_REPLICAS", "2")
    settings = ServiceSettings(environment="test")
    assert (settings.manage_topics, settings.topic_replication_factor, settings.topic_min_insync_replicas) == (
        False,
        3,
        2,
    )


async def test_a_dead_letter_topic_is_created_and_brought_to_delete_without_expiry(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    new, old = f"{topic_prefix}dlqcfg.new.dlq", f"{topic_prefix}dlqcfg.old.dlq"
    await create_topic_with(kafka_bootstrap, old, {"retention.ms": SEVEN_DAYS_MS}, partitions=1)
    await ensure_topics(kafka_bootstrap, [new, old], partitions=1)
    for topic in (new, old):
        configs = await topic_configs(kafka_bootstrap, topic)
        assert (configs["cleanup.policy"], configs["retention.ms"], configs["retention.bytes"]) == (
            "delete",
            "-1",
            "-1",
        )
    assert await topics_dropping_data(kafka_bootstrap, [new, old]) == {}


async def test_only_the_topics_named_to_configure_are_changed(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A reader creates a missing topic as its owner would, but leaves an existing one to its owner."""
    owned, read, missing = (f"{topic_prefix}cfgonly.{n}" for n in ("owned", "read", "missing"))
    for topic in (owned, read):
        await create_topic_with(kafka_bootstrap, topic, {"retention.ms": SEVEN_DAYS_MS}, partitions=1)
    await ensure_topics(kafka_bootstrap, [owned, read, missing], partitions=1, configure=[owned])
    assert (await topic_configs(kafka_bootstrap, owned))["cleanup.policy"] == "compact"
    assert (await topic_configs(kafka_bootstrap, missing))["cleanup.policy"] == "compact"
    assert (await topic_configs(kafka_bootstrap, read))["cleanup.policy"] == "delete"
    dropping = await topics_dropping_data(kafka_bootstrap, [owned, read, missing, f"{topic_prefix}cfgonly.absent"])
    assert list(dropping) == [read]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the runtime needs one; topics use none
async def test_a_service_started_while_the_broker_is_down_configures_and_checks_its_topics_once_it_is_back(
    engine: AsyncEngine, restartable_broker: RestartableBroker, restartable_kafka: str, topic_prefix: str
) -> None:
    owned = f"{topic_prefix}late.owned"
    settings = ServiceSettings(environment="test", service_name="late", kafka_bootstrap_servers=restartable_kafka)
    runtime = ServiceRuntime(settings, engine, session_factory(engine))
    restartable_broker.stop()
    try:
        await runtime.start([owned])
        assert runtime.topic_retention() == {"topic_retention": {"checked": False, "drop_data": {}}}
    finally:
        restartable_broker.start()
    try:

        async def checked() -> bool:
            return runtime.topics_dropping_data is not None

        await wait_until(checked, timeout=90)
        assert (await topic_configs(restartable_kafka, owned))["cleanup.policy"] == "compact"
        assert runtime.topic_retention() == {"topic_retention": {"checked": True, "drop_data": {}}}
    finally:
        await runtime.stop()
