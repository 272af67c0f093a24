"""Transactional outbox: a message is written in the same transaction as the change it announces,
and a relay publishes committed messages to Kafka in order per key."""

from common.outbox.relay import OutboxRelay
from common.outbox.table import outbox_table
from common.outbox.writer import (
    MAX_MESSAGE_BYTES,
    OUTBOX_COLUMNS,
    MessageBatch,
    MessageTooLarge,
    OutboxMessage,
    check_message_size,
    cloudevent_time,
    install_wakeup,
    message_headers,
    outbox_insert,
    outbox_message,
    outbox_rows,
    outbox_unnest_insert,
    stage,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "OUTBOX_COLUMNS",
    "MessageBatch",
    "MessageTooLarge",
    "OutboxMessage",
    "OutboxRelay",
    "check_message_size",
    "cloudevent_time",
    "install_wakeup",
    "message_headers",
    "outbox_insert",
    "outbox_message",
    "outbox_rows",
    "outbox_table",
    "outbox_unnest_insert",
    "stage",
]
