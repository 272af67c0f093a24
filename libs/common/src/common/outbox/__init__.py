"""Transactional outbox: a message is written in the same transaction as the change it announces,
and a relay publishes committed messages to Kafka in order per key."""

from common.outbox.relay import OutboxRelay
from common.outbox.table import outbox_table
from common.outbox.writer import (
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    add_many_to_outbox,
    add_to_outbox,
    check_message_size,
    install_wakeup,
    outbox_rows,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MessageTooLarge",
    "OutboxRelay",
    "add_many_to_outbox",
    "add_to_outbox",
    "check_message_size",
    "install_wakeup",
    "outbox_rows",
    "outbox_table",
]
