"""drop the outbox's partial index on unsent rows

The relay deletes the rows it has published (it used to mark them sent), so every row left is unsent
and `ix_outbox_unsent` held the same ids as the primary key: one more index entry written, and
vacuumed, per message. The relay's claim reads the primary key instead. PostgreSQL and SQLite.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from collections.abc import Sequence

from common.migration_ops import create_outbox_unsent_index, drop_outbox_unsent_index

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_outbox_unsent_index()


def downgrade() -> None:
    create_outbox_unsent_index()
