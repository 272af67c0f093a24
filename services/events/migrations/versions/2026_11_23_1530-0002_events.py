"""events table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JsonList = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organizer_kind", sa.String(16), nullable=False),
        sa.Column("organizer_code", sa.String(32), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("host_country", sa.String(2), nullable=False),
        sa.Column("host_province", sa.String(6), nullable=True),
        sa.Column("city", sa.String(200), nullable=True),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("foreign_participants", sa.Integer(), nullable=False),
        sa.Column("papers", sa.Integer(), nullable=False),
        sa.Column("countries", JsonList, nullable=False),
        sa.Column("partner_org_ids", JsonList, nullable=False),
        sa.Column("fields", JsonList, nullable=False),
        sa.Column("target_groups", JsonList, nullable=False),
        sa.Column("flagship", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint(
            "organizer_kind", "organizer_code", "external_ref", name="uq_events_organizer_external_ref"
        ),
    )
    op.create_index("ix_events_host_province", "events", ["host_province"])
    op.create_index("ix_events_start_date", "events", ["start_date"])
    op.create_index("ix_events_type", "events", ["type"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_events_countries", "events", ["countries"], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_countries", table_name="events")
    op.drop_index("ix_events_type", table_name="events")
    op.drop_index("ix_events_start_date", table_name="events")
    op.drop_index("ix_events_host_province", table_name="events")
    op.drop_table("events")
