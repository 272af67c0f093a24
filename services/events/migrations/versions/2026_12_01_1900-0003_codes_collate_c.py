"""byte-order collation for the code columns (PostgreSQL)

The organizer, external_ref, type and host_province columns hold codes and client ids, compared for
equality and indexed. Under the database's default collation (C.UTF-8 here, a libc locale) every
index comparison calls strcoll; with COLLATE "C" it is a memcmp, which takes about a sixth off
PostgreSQL's CPU for a bulk insert of 1,000 events (bench/events/README.md).
Equality is unchanged (both collations are deterministic); only the sort order of these columns
becomes byte order. SQLite compares bytes already (BINARY): nothing to do there.
The ALTER holds an ACCESS EXCLUSIVE lock on `events` while it rewrites the unique index and the
`type` and `host_province` indexes: writes wait for seconds on a table of a million rows, so run it
in a quiet moment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "organizer_kind": "varchar(16)",
    "organizer_code": "varchar(32)",
    "external_ref": "varchar(200)",
    "type": "varchar(32)",
    "host_province": "varchar(6)",
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    changes = ", ".join(f"ALTER COLUMN {name} TYPE {kind} COLLATE {collation}" for name, kind in COLUMNS.items())
    op.execute(f"ALTER TABLE events {changes}")  # rebuilds the indexes on these columns


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
