"""The talent database schema: people (with their personal fields, which live nowhere else), their
posts as rows (for the posts list), the audit record, and the outbox and inbox."""

from common.audit import audit_table
from common.db import new_metadata
from common.inbox import inbox_table
from common.outbox import outbox_table
from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)

Json = JSON().with_variant(JSONB(), "postgresql")

persons = Table(
    "persons",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("society", String(32), nullable=False),
    # NULL once erased: the same external_id synced later makes a new person.
    Column("external_id", String(64), nullable=True),
    Column("content_hash", String(64), nullable=True),
    Column("version", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    # Personal fields (domain.model.PERSONAL_FIELDS): set to NULL when the person is erased.
    Column("name", String(300), nullable=True),
    Column("name_en", String(300), nullable=True),
    Column("gender", String(1), nullable=True),
    Column("birth_year", Integer, nullable=True),
    Column("affiliation", String(300), nullable=True),
    Column("email", String(254), nullable=True),
    Column("orcid", String(19), nullable=True),
    # Public content.
    Column("groups", Json, nullable=False),
    Column("country", String(2), nullable=True),
    Column("province", String(6), nullable=True),
    Column("reserve", Boolean, nullable=False),
    Column("fields", Json, nullable=False),
    Column("posts", Json, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("uq_persons_society_external_id", "society", "external_id", unique=True),
    Index("ix_persons_society_id", "society", "id"),
)

person_posts = Table(
    "person_posts",
    metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("society", String(32), nullable=False),
    Column("organization", String(300), nullable=False),
    Column("organization_country", String(2), nullable=True),
    Column("role", String(32), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=True),
    Index("ix_person_posts_organization", "organization"),
    Index("ix_person_posts_role", "role"),
)
