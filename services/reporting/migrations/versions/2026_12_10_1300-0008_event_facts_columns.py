"""event facts in typed columns instead of one positional `|`-joined text

`rm_event_facts.facts` (`active|year|home|countries|body|type|participants|foreign|papers|flagship`,
countries as `DE=group:eu,m49:150;TH=group:asean`) becomes one column per fact, the partner countries
as JSON text (`{"DE":["group:eu","m49:150"],"TH":["group:asean"]}`). Existing rows are converted, so
the next version of each event still subtracts exactly what was added; downgrade packs them back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "rm_event_facts"
CHUNK = 5000
TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "active": sa.Boolean(),
    "year": sa.Integer(),
    "home": sa.String(64),
    "countries": sa.Text(),
    "body": sa.String(64),
    "type": sa.String(32),
    "participants": sa.BigInteger(),
    "foreign_participants": sa.BigInteger(),
    "papers": sa.BigInteger(),
    "flagship": sa.Boolean(),
}
NAMES = list(TYPES)


def _unpacked(text: str) -> dict[str, Any]:
    active, year, home, countries, body, type_, participants, foreign, papers, flagship = text.split("|")
    by_country: dict[str, list[str]] = {}
    for part in countries.split(";") if countries else ():
        country, _, regions = part.partition("=")
        by_country[country] = regions.split(",") if regions else []
    return {
        "active": active == "1",
        "year": int(year),
        "home": home,
        "countries": json.dumps(by_country, separators=(",", ":")) if by_country else "",
        "body": body,
        "type": type_,
        "participants": int(participants),
        "foreign_participants": int(foreign),
        "papers": int(papers),
        "flagship": flagship == "1",
    }


def _packed(row: Any) -> str:
    stored: dict[str, list[str]] = json.loads(row.countries) if row.countries else {}
    countries = ";".join(f"{c}={','.join(regions)}" for c, regions in stored.items())
    fields = [
        str(int(bool(row.active))),
        str(row.year),
        row.home,
        countries,
        row.body,
        row.type,
        str(row.participants),
        str(row.foreign_participants),
        str(row.papers),
        str(int(bool(row.flagship))),
    ]
    return "|".join(fields)


def _convert(select_columns: list[str], set_columns: list[str], convert: Any) -> None:
    """Rewrite every row, a chunk at a time, keyed by (gen, id)."""
    bind = op.get_bind()
    table = sa.table(TABLE, *(sa.column(n) for n in ["gen", "id", *select_columns, *set_columns]))
    update = (
        sa.update(table)
        .where(table.c.gen == sa.bindparam("k_gen"), table.c.id == sa.bindparam("k_id"))
        .values({n: sa.bindparam(f"v_{n}") for n in set_columns})
    )
    rows = bind.execute(sa.select(table.c.gen, table.c.id, *(table.c[n] for n in select_columns))).all()
    for start in range(0, len(rows), CHUNK):
        params = []
        for row in rows[start : start + CHUNK]:
            values = convert(row)
            params.append({"k_gen": row.gen, "k_id": row.id, **{f"v_{n}": values[n] for n in set_columns}})
        bind.execute(update, params)


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name, type_ in TYPES.items():
            batch.add_column(sa.Column(name, type_, nullable=True))
    _convert(["facts"], NAMES, lambda row: _unpacked(row.facts))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("facts")
        for name, type_ in TYPES.items():
            batch.alter_column(name, existing_type=type_, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("facts", sa.Text(), nullable=True))
    _convert(NAMES, ["facts"], lambda row: {"facts": _packed(row)})
    with op.batch_alter_table(TABLE) as batch:
        for name in NAMES:
            batch.drop_column(name)
        batch.alter_column("facts", existing_type=sa.Text(), nullable=False)
