"""Alembic operations for the plumbing tables, so every service's first migration is one line each."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


# Every service's first migration: the plumbing tables.
def create_outbox_and_inbox() -> None:
    create_outbox()
    create_inbox()


def drop_outbox_and_inbox() -> None:
    drop_inbox()
    drop_outbox()


def create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    create_outbox_unsent_index()


def drop_outbox() -> None:
    op.drop_table("outbox")


# The relay deletes the rows it publishes, so `sent_at` was never set: every row of the outbox is unsent.
# Dropped by each service's `drop_outbox_sent_at` migration (downgrade: the column again, empty).
def drop_outbox_sent_at() -> None:
    with op.batch_alter_table("outbox") as batch:  # SQLite: the table is copied without the column
        batch.drop_column("sent_at")


def add_outbox_sent_at() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))


# With the relay deleting what it publishes every row left is unsent, so this partial index duplicated
# the primary key: one more index entry written (and vacuumed) per message. Each service's migration
# that drops it: `drop_outbox_unsent_index` (downgrade: create it again).
def create_outbox_unsent_index() -> None:
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def drop_outbox_unsent_index() -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox")


# Outbox rows the relay could not publish (common.outbox.table.dead_letter_table); the id is the outbox
# row's own.
def create_outbox_dead_letter() -> None:
    op.create_table(
        "outbox_dead_letter",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_dead_letter"),
    )


def drop_outbox_dead_letter() -> None:
    op.drop_table("outbox_dead_letter")


def create_inbox() -> None:
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_inbox"),
    )


def drop_inbox() -> None:
    op.drop_table("inbox")


# The audit record (common.audit.audit_table): who changed what, when; personal fields by name only.
def create_audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_sub", sa.String(300), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_code", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def drop_audit_log() -> None:
    op.drop_table("audit_log")
