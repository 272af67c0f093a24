"""counters leave room on their pages (fillfactor 50) for HOT updates

Every batch adds to a few thousand existing counter rows. With full pages, each new row version lands on
another page and needs a new entry in the five-column primary key; with room on the page, PostgreSQL
updates in place (a heap-only tuple) and the index is untouched — the two counter upserts took ~30 %
less time (bench/reporting/README.md). The tables stay small (one row per region, year and metric).
PostgreSQL only: SQLite has no such setting. Pages written before keep their fill until rewritten.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTER_TABLES = ("rm_metrics", "rm_country_refs")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in COUNTER_TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in COUNTER_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
