"""The events database schema: the events table, the audit record, the outbox and the inbox
(PostgreSQL and SQLite)."""

from common.audit import audit_table
from common.db import new_metadata
from common.inbox import inbox_table
from common.outbox import outbox_table
from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Index, Integer, String, Table, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)

# JSONB on PostgreSQL so `countries @> '["DE"]'` can use a GIN index; JSON text on SQLite.
JsonList = JSON().with_variant(JSONB(), "postgresql")


def code_string(length: int) -> String:
    """A code or client id: byte-order collation on PostgreSQL (migration 0003), BINARY on SQLite."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


events = Table(
    "events",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("organizer_kind", code_string(16), nullable=False),
    Column("organizer_code", code_string(32), nullable=False),
    Column("external_ref", code_string(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("type", code_string(32), nullable=False),
    Column("start_date", Date(), nullable=False),
    Column("end_date", Date(), nullable=False),
    Column("host_country", String(2), nullable=False),
    Column("host_province", code_string(6), nullable=True),
    Column("city", String(200), nullable=True),
    Column("participants", Integer(), nullable=False),
    Column("foreign_participants", Integer(), nullable=False),
    Column("papers", Integer(), nullable=False),
    Column("countries", JsonList, nullable=False),
    Column("partner_org_ids", JsonList, nullable=False),
    Column("fields", JsonList, nullable=False),
    Column("target_groups", JsonList, nullable=False),
    Column("flagship", Boolean(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Idempotency: one event per organizer and client reference, enforced by the database so that
    # concurrent identical posts cannot both insert.
    UniqueConstraint("organizer_kind", "organizer_code", "external_ref", name="uq_events_organizer_external_ref"),
)
Index("ix_events_host_province", events.c.host_province)
Index("ix_events_start_date", events.c.start_date)
Index("ix_events_type", events.c.type)
Index("ix_events_countries", events.c.countries, postgresql_using="gin")
