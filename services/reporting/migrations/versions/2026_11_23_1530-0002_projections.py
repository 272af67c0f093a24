"""reporting projections (generation-tagged read models)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rm_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("next", sa.Integer(), nullable=False),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rm_generation"),
    )
    op.execute("INSERT INTO rm_generation (id, current, next) VALUES (1, 1, 2)")
    op.create_table(
        "rm_metrics",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(96), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("gen", "region", "year", "metric", name="pk_rm_metrics"),
    )
    op.create_table(
        "rm_country_refs",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gen", "kind", "region", "year", "country", name="pk_rm_country_refs"),
    )
    op.create_table(
        "rm_aggregates",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=True),
        sa.Column("contribution", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("gen", "kind", "id", name="pk_rm_aggregates"),
    )
    op.create_table(
        "rm_agreement_regions",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("signed_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("gen", "agreement_id", "region", name="pk_rm_agreement_regions"),
    )
    op.create_index("ix_rm_agreement_regions_region", "rm_agreement_regions", ["gen", "region"])
    op.create_table(
        "rm_agreement_orgs",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("gen", "org_id", "agreement_id", name="pk_rm_agreement_orgs"),
    )
    op.create_table(
        "rm_bodies",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("last_change", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gen", "kind", "code", name="pk_rm_bodies"),
    )


def downgrade() -> None:
    for table in ("rm_bodies", "rm_agreement_orgs"):
        op.drop_table(table)
    op.drop_index("ix_rm_agreement_regions_region", table_name="rm_agreement_regions")
    for table in ("rm_agreement_regions", "rm_aggregates", "rm_country_refs", "rm_metrics", "rm_generation"):
        op.drop_table(table)
