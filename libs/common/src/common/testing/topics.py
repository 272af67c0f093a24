"""Topic configurations read back, and topics made as an older version or an operator made them, straight
through the broker's admin API (DescribeConfigs, CreateTopics), not through the code under test."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's configuration as the broker reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0, resource
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def create_topic_with(bootstrap: str, topic: str, configs: dict[str, str], *, partitions: int = 3) -> None:
    """A topic with exactly these configs (the broker's defaults for the rest): one made before the services
    set `cleanup.policy`, or by an operator."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()
    assert [code for _t, code, *_ in response.topic_errors] == [0], response.topic_errors
