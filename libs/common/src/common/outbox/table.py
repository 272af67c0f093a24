"""The outbox table every service migrates (PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, text

OUTBOX_TABLE = "outbox"


def outbox_table(metadata: MetaData) -> Table:
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
        Column("sent_at", DateTime(timezone=True), nullable=True),
    )
    Index(
        "ix_outbox_unsent",
        table.c.id,
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    )
    return table
