"""people, their posts and the audit record

Personal fields live in `persons` only and are set to NULL when a person is erased; `person_posts`
holds each person's posts as rows for `GET /v1/talent/posts`. PostgreSQL and SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from common.migration_ops import create_audit_log, drop_audit_log
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("society", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(300), nullable=True),
        sa.Column("name_en", sa.String(300), nullable=True),
        sa.Column("gender", sa.String(1), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("affiliation", sa.String(300), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("orcid", sa.String(19), nullable=True),
        sa.Column("groups", JSON, nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("province", sa.String(6), nullable=True),
        sa.Column("reserve", sa.Boolean(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("posts", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_persons"),
    )
    op.create_index("uq_persons_society_external_id", "persons", ["society", "external_id"], unique=True)
    op.create_index("ix_persons_society_id", "persons", ["society", "id"])
    op.create_table(
        "person_posts",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("society", sa.String(32), nullable=False),
        sa.Column("organization", sa.String(300), nullable=False),
        sa.Column("organization_country", sa.String(2), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("person_id", "position", name="pk_person_posts"),
    )
    op.create_index("ix_person_posts_organization", "person_posts", ["organization"])
    op.create_index("ix_person_posts_role", "person_posts", ["role"])
    create_audit_log()


def downgrade() -> None:
    drop_audit_log()
    op.drop_table("person_posts")
    op.drop_table("persons")
