"""The outbox table every service migrates (PostgreSQL and SQLite), and its dead-letter table."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text

OUTBOX_TABLE = "outbox"
DEAD_LETTER_TABLE = "outbox_dead_letter"


def outbox_table(metadata: MetaData) -> Table:
    """The outbox, with its dead-letter table declared beside it in the same metadata."""
    table = Table(
        OUTBOX_TABLE,
        metadata,
        # BIGINT identity on PostgreSQL; INTEGER PRIMARY KEY (rowid) on SQLite.
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    # Every row is unsent: the relay deletes what it published, so neither a "sent" mark nor an index on
    # unsent rows is needed; it reads in primary-key order.
    dead_letter_table(metadata)
    return table


def dead_letter_table(metadata: MetaData) -> Table:
    """Outbox rows the relay could never publish (too large for the broker), moved aside so the rows
    behind them go on: kept whole, with why, for an operator to fix and publish by hand."""
    if DEAD_LETTER_TABLE in metadata.tables:
        return metadata.tables[DEAD_LETTER_TABLE]
    return Table(
        DEAD_LETTER_TABLE,
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
        Column("event_id", String(64), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("failed_at", DateTime(timezone=True), nullable=False),
        Column("reason", Text, nullable=False),
    )
