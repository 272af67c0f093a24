"""events keep their contribution as columns (rm_event_facts)

Existing event rows of rm_aggregates (contribution as JSON blocks) are converted, so the next version
of each event still subtracts exactly what was added.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL = "all"


def upgrade() -> None:
    op.create_table(
        "rm_event_facts",
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("gen", "id", name="pk_rm_event_facts"),
    )
    bind = op.get_bind()
    legacy = bind.execute(
        sa.text("SELECT gen, id, version, contribution FROM rm_aggregates WHERE kind = 'event'")
    ).all()
    rows = [
        {"gen": r.gen, "id": r.id, "version": r.version, "facts": _packed(json.loads(r.contribution))}
        for r in legacy
    ]
    if rows:
        facts = sa.table("rm_event_facts", *(sa.column(name) for name in rows[0]))
        bind.execute(sa.insert(facts), rows)
        bind.execute(sa.text("DELETE FROM rm_aggregates WHERE kind = 'event'"))


def _packed(contribution: dict[str, Any]) -> str:
    """`EventFacts.pack` of a contribution `attribution.event_contribution` built (blocks: all+home,
    world regions if any, the reporting body; refs: the partner countries by region)."""
    blocks = contribution.get("b") or []
    if not blocks:  # a cancelled event contributes nothing
        return "0|0|||||0|0|0|0"
    (regions, years, values) = blocks[0]
    home = next(r for r in regions if r != ALL)
    by_region: dict[str, list[str]] = {}
    for _kind, _years, refs in contribution.get("r") or []:
        by_region = refs
    countries = ";".join(
        f"{c}={','.join(sorted(r for r, cs in by_region.items() if c in cs and r not in (ALL, home)))}"
        for c in sorted(by_region.get(ALL, []))
    )
    event_type = next((m.removeprefix("events.by_type.") for m in values if m.startswith("events.by_type.")), "other")
    fields = [
        "1",
        str(years[0]),
        home,
        countries,
        blocks[-1][0][0],
        event_type,
        str(values.get("events.participants", 0)),
        str(values.get("events.foreign_participants", 0)),
        str(values.get("events.papers", 0)),
        str(values.get("events.flagship", 0)),
    ]
    return "|".join(fields)


def downgrade() -> None:
    op.drop_table("rm_event_facts")
