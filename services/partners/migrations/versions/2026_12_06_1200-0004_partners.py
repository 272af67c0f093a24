"""organizations, agreements (with their partner links), memberships and the audit record

Duplicate organizations are kept out by partial unique indexes over the active ones (ROR id, normalised
name and country, normalised Chinese name and country); an agreement's external_ref is unique per
signing body. PostgreSQL and SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from common.migration_ops import create_audit_log, drop_audit_log

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_zh", sa.String(300), nullable=True),
        sa.Column("name_key", sa.String(300), nullable=False),
        sa.Column("name_zh_key", sa.String(300), nullable=True),
        sa.Column("country_key", sa.String(2), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ror_id", sa.String(9), nullable=True),
        sa.Column("website", sa.String(2000), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("created_by_kind", sa.String(16), nullable=False),
        sa.Column("created_by_code", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
    )
    for name, columns in (
        ("uq_organizations_ror_id", ["ror_id"]),
        ("uq_organizations_name", ["name_key", "country_key"]),
        ("uq_organizations_name_zh", ["name_zh_key", "country_key"]),
    ):
        op.create_index(name, "organizations", columns, unique=True, postgresql_where=ACTIVE, sqlite_where=ACTIVE)
    op.create_index("ix_organizations_country", "organizations", ["country"])
    op.create_table(
        "agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.Column("signer_kind", sa.String(16), nullable=False),
        sa.Column("signer_code", sa.String(32), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("partner_org_ids", sa.JSON(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("flagship", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("will_not_renew", sa.Boolean(), nullable=False),
        sa.Column("renewals", sa.JSON(), nullable=False),
        sa.Column("terminated_on", sa.Date(), nullable=True),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=True),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("notices", sa.JSON(), nullable=False),
        sa.Column("next_check_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agreements"),
    )
    op.create_index(
        "uq_agreements_signer_ref", "agreements", ["signer_kind", "signer_code", "external_ref"], unique=True
    )
    op.create_index("ix_agreements_next_check_on", "agreements", ["next_check_on"])
    op.create_index("ix_agreements_expires_on", "agreements", ["expires_on"])
    op.create_table(
        "agreement_partners",
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name="fk_agreement_partners_agreement_id_agreements", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agreement_id", "org_id", name="pk_agreement_partners"),
    )
    op.create_index("ix_agreement_partners_org", "agreement_partners", ["org_id"])
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("member_kind", sa.String(16), nullable=False),
        sa.Column("member_code", sa.String(32), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_memberships"),
    )
    op.create_index("ix_memberships_organization", "memberships", ["organization_id"])
    op.create_index(
        "uq_memberships_active",
        "memberships",
        ["organization_id", "member_kind", "member_code"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    create_audit_log()


def downgrade() -> None:
    drop_audit_log()
    op.drop_table("memberships")
    op.drop_table("agreement_partners")
    op.drop_table("agreements")
    op.drop_table("organizations")
