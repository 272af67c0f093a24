"""drop the outbox's sent_at column

The relay deletes the rows it has published, so nothing sets `sent_at` and every row left is unsent;
the column only cost a filter on every read of the outbox. PostgreSQL and SQLite (the table is copied
there); the rows waiting in the outbox stay.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""
from collections.abc import Sequence

from common.migration_ops import add_outbox_sent_at, drop_outbox_sent_at

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_outbox_sent_at()


def downgrade() -> None:
    add_outbox_sent_at()
