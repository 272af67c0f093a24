"""the outbox's dead-letter table

Outbox rows the relay can never publish (larger than the broker takes) are moved here, whole and with
the reason, so the rows behind them are published; an operator fixes and publishes them by hand.
PostgreSQL and SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from collections.abc import Sequence

from common.migration_ops import create_outbox_dead_letter, drop_outbox_dead_letter

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_dead_letter()


def downgrade() -> None:
    drop_outbox_dead_letter()
