"""Producer and consumer factories with every safety-relevant option set explicitly."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from common.kafka.logs import rate_limit_kafka_client_logs


def new_producer(
    bootstrap_servers: str, *, client_id: str, linger_ms: int = 2, max_batch_size: int = 256 * 1024
) -> AIOKafkaProducer:
    # aiokafka defaults to acks=1 without idempotence: a leader failover could lose or duplicate.
    rate_limit_kafka_client_logs()
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        metadata_max_age_ms=30_000,
    )


def new_consumer(
    bootstrap_servers: str, *topics: str, group_id: str, client_id: str, max_poll_records: int = 2000
) -> AIOKafkaConsumer:
    # auto_offset_reset="earliest": a new group must read history, not silently skip it (default
    # "latest"); offsets are committed explicitly after the database transaction. 4 MiB per partition
    # (default 1 MiB, ~1,300 messages here) lets a catching-up consumer fill batches of 10,000.
    rate_limit_kafka_client_logs()
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=50,
        request_timeout_ms=20_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        metadata_max_age_ms=30_000,
    )
