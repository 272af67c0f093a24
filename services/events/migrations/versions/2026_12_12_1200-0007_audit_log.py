"""the audit record: who changed which event, when, and which fields

Every write of an event (record, update, cancel) adds an entry in its transaction; `admin` reads them
at `GET /v1/events/audit`. PostgreSQL and SQLite.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12
"""
from collections.abc import Sequence

from common.migration_ops import create_audit_log, drop_audit_log

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_log()


def downgrade() -> None:
    drop_audit_log()
