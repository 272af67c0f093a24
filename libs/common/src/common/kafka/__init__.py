"""Kafka clients configured safely for at-least-once delivery (aiokafka's defaults are not)."""

from common.kafka.admin import ensure_topics, kafka_reachable
from common.kafka.clients import new_consumer, new_producer

__all__ = ["ensure_topics", "kafka_reachable", "new_consumer", "new_producer"]
