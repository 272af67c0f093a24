"""The partners database schema (PostgreSQL and SQLite): organizations, agreements with their partner
links, memberships, the audit record, the outbox and the inbox."""

from typing import Any

from common.audit import audit_table
from common.db import new_metadata
from common.inbox import inbox_table
from common.outbox import outbox_table
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    text,
)

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)

ACTIVE_ONLY: dict[str, Any] = {"postgresql_where": text("status = 'active'"), "sqlite_where": text("status = 'active'")}

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("name_zh", String(300), nullable=True),
    # Normalised names (partners.domain.names.name_key) and the country as '' when international: the
    # keys duplicates are found by, unique among active organizations so concurrent registrations cannot
    # both pass the check.
    Column("name_key", String(300), nullable=False),
    Column("name_zh_key", String(300), nullable=True),
    Column("country_key", String(2), nullable=False),
    Column("country", String(2), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("ror_id", String(9), nullable=True),
    Column("website", String(2000), nullable=True),
    Column("status", String(16), nullable=False),
    Column("merged_into", Uuid(), nullable=True),
    Column("created_by_kind", String(16), nullable=False),
    Column("created_by_code", String(32), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("uq_organizations_ror_id", organizations.c.ror_id, unique=True, **ACTIVE_ONLY)
Index("uq_organizations_name", organizations.c.name_key, organizations.c.country_key, unique=True, **ACTIVE_ONLY)
Index("uq_organizations_name_zh", organizations.c.name_zh_key, organizations.c.country_key, unique=True, **ACTIVE_ONLY)
Index("ix_organizations_country", organizations.c.country)

agreements = Table(
    "agreements",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("external_ref", String(200), nullable=True),
    Column("signer_kind", String(16), nullable=False),
    Column("signer_code", String(32), nullable=False),
    Column("title", String(300), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("partner_org_ids", JSON(), nullable=False),
    Column("signed_on", Date(), nullable=False),
    Column("expires_on", Date(), nullable=True),
    Column("fields", JSON(), nullable=False),
    Column("flagship", Boolean(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("will_not_renew", Boolean(), nullable=False),
    Column("renewals", JSON(), nullable=False),
    Column("terminated_on", Date(), nullable=True),
    Column("termination_reason", Text(), nullable=True),
    Column("document", JSON(), nullable=True),
    Column("term", Integer(), nullable=False),
    Column("notices", JSON(), nullable=False),  # renewal notices given ("term:days"); not published
    # The day the scheduler must look at it next (a notice or its expiry due); null when never again.
    Column("next_check_on", Date(), nullable=True),
    Column("version", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index(
    "uq_agreements_signer_ref",
    agreements.c.signer_kind,
    agreements.c.signer_code,
    agreements.c.external_ref,
    unique=True,
)
Index("ix_agreements_next_check_on", agreements.c.next_check_on)
Index("ix_agreements_expires_on", agreements.c.expires_on)

# One row per agreement and partner: "which agreements has this organization" without JSON operators.
agreement_partners = Table(
    "agreement_partners",
    metadata,
    Column("agreement_id", Uuid(), ForeignKey("agreements.id", ondelete="CASCADE"), primary_key=True),
    Column("org_id", Uuid(), primary_key=True),
)
Index("ix_agreement_partners_org", agreement_partners.c.org_id)

memberships = Table(
    "memberships",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("organization_id", Uuid(), nullable=False),
    Column("member_kind", String(16), nullable=False),
    Column("member_code", String(32), nullable=False),
    Column("since", Date(), nullable=False),
    Column("until", Date(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_memberships_organization", memberships.c.organization_id)
Index(
    "uq_memberships_active",
    memberships.c.organization_id,
    memberships.c.member_kind,
    memberships.c.member_code,
    unique=True,
    **ACTIVE_ONLY,
)
