"""Topics at start-up: created with, and brought to, the configuration under which they keep what a
rebuild needs; which topics would still drop data; and a cheap reachability check for /readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC = 3
DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs' config_source of a setting made on the topic itself
# What Kafka gives a topic whose broker sets nothing (a stock broker: log.retention.hours=168).
_KAFKA_DEFAULTS = {"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1"}


def topic_config(topic: str, *, min_insync_replicas: int = 1) -> dict[str, str]:
    """The configuration a topic of ours is created with, and an owner brings an existing one to."""
    if topic.endswith(".dlq"):  # common.kafka.consumer.dlq_topic
        # A dead-letter topic must keep every poison message, and several may share a key or have none
        # (a compacted topic refuses keyless ones): delete policy, and nothing ever old enough to delete.
        policy = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
    else:
        # Each message carries its aggregate's whole state, so the latest one per key is all a rebuild
        # needs: compaction keeps exactly that, forever, and switching an older topic to it loses nothing.
        policy = {"cleanup.policy": "compact"}
    return {**policy, "min.insync.replicas": str(min_insync_replicas)}


def data_loss(config: Mapping[str, str | None]) -> str | None:
    """Why a topic with this effective configuration would delete messages by age or size, or None."""
    settings = {**_KAFKA_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    policies = {p.strip() for p in settings["cleanup.policy"].split(",")}
    if "delete" not in policies:
        return None
    limits = [f"{name}={settings[name]}" for name in ("retention.ms", "retention.bytes") if int(settings[name]) >= 0]
    if not limits:
        return None
    return f"cleanup.policy={settings['cleanup.policy']} with {' and '.join(limits)}"


@asynccontextmanager
async def _admin(bootstrap_servers: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    configure: Collection[str] | None = None,
) -> None:
    """Create the topics that do not exist yet with `topic_config`, and bring the existing ones named in
    `configure` (all of them by default: a service configures the topics it owns) to it."""
    wanted = list(dict.fromkeys(topics))
    async with _admin(bootstrap_servers) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=partitions,
                        replication_factor=replication_factor,
                        topic_configs=topic_config(t, min_insync_replicas=min_insync_replicas),
                    )
                    for t in missing
                ]
            )
            for topic, code, *_ in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {topic}: error code {code}")
            log.info("created topics", extra={"topics": missing})
        present = [t for t in wanted if t in existing and (configure is None or t in configure)]
        if present:
            await _bring_to_config(admin, present, min_insync_replicas)


async def _bring_to_config(admin: AIOKafkaAdminClient, topics: list[str], min_insync_replicas: int) -> None:
    described = await _describe(admin, topics)
    changes: list[ConfigResource] = []
    for topic, entries in described.items():
        target = topic_config(topic, min_insync_replicas=min_insync_replicas)
        effective = {name: value for name, (value, _source) in entries.items()}
        differing = {k: v for k, v in target.items() if effective.get(k) != v}
        if not differing:
            continue
        # AlterConfigs replaces all of a topic's own settings (aiokafka has no IncrementalAlterConfigs):
        # the ones it has are sent again beside ours, so only ours change.
        own = {k: v for k, (v, source) in entries.items() if source == DYNAMIC_TOPIC_CONFIG and v is not None}
        changes.append(ConfigResource(ConfigResourceType.TOPIC, topic, {**own, **target}))
        was = {k: effective.get(k) for k in differing}
        log.info("bringing topic %s to its configuration: %s (was %s)", topic, differing, was)
    if not changes:
        return
    for response in await admin.alter_configs(changes):
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                raise RuntimeError(
                    f"could not configure topic {resource['resource_name']}: error code {resource['error_code']} "
                    f"({resource['error_message']})"
                )


async def _describe(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, dict[str, tuple[str | None, int]]]:
    """Each existing topic's effective settings with where each comes from; topics that do not exist are left out."""
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    described: dict[str, dict[str, tuple[str | None, int]]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] == UNKNOWN_TOPIC:
                continue
            if resource["error_code"] != 0:
                raise RuntimeError(
                    f"could not describe topic {resource['resource_name']}: error code {resource['error_code']}"
                )
            described[resource["resource_name"]] = {
                e["config_names"]: (e["config_value"], e.get("config_source", -1)) for e in resource["config_entries"]
            }
    return described


async def topics_dropping_data(bootstrap_servers: str, topics: Iterable[str]) -> dict[str, str]:
    """The existing topics among `topics` that would delete messages by age or size, each with why."""
    async with _admin(bootstrap_servers) as admin:
        described = await _describe(admin, list(dict.fromkeys(topics)))
    found = {t: data_loss({k: v for k, (v, _s) in entries.items()}) for t, entries in described.items()}
    return {topic: reason for topic, reason in found.items() if reason is not None}


async def kafka_reachable(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    """True when a bootstrap server accepts a TCP connection within `timeout` seconds."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False
