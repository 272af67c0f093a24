"""`common.db.json_list_holds`: the rows whose JSON list holds a value, the same on PostgreSQL (`@>` on
JSONB, as the services' GIN indexes serve it) and SQLite (`json_each`)."""

from __future__ import annotations

from common.db import create_engine, json_list_holds, new_metadata
from sqlalchemy import JSON, Column, Integer, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tags", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
)
ROWS = [{"id": 1, "tags": ["DE", "FR"]}, {"id": 2, "tags": ["FR"]}, {"id": 3, "tags": []}, {"id": 4, "tags": ["DEU"]}]


async def _holding(url: str) -> dict[str, list[int]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(things.insert(), ROWS)
            found = {}
            for value in ("DE", "FR", "IT", 'a"b'):
                holds = json_list_holds(things.c.tags, value, dialect=engine.dialect.name)
                rows = await connection.execute(select(things.c.id).where(holds).order_by(things.c.id))
                found[value] = [row[0] for row in rows]
        return found
    finally:
        await engine.dispose()


EXPECTED = {"DE": [1], "FR": [1, 2], "IT": [], 'a"b': []}


async def test_the_rows_holding_a_value_on_postgresql(make_database) -> None:
    assert await _holding(await make_database("json_holds")) == EXPECTED


async def test_the_rows_holding_a_value_on_sqlite(tmp_path) -> None:
    assert await _holding(f"sqlite+aiosqlite:///{tmp_path / 'things.db'}") == EXPECTED


def test_postgresql_asks_for_containment_which_a_gin_index_serves() -> None:
    holds = json_list_holds(things.c.tags, "DE", dialect="postgresql")
    sql = str(holds.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    assert sql == "things.tags @> CAST('[\"DE\"]' AS JSONB)"
