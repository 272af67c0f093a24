"""The outbox's bulk INSERT for asyncpg, spelled once (common.outbox) for every service's bulk path."""

from __future__ import annotations

import pytest
from common.outbox import OUTBOX_COLUMNS, outbox_insert, outbox_table, outbox_unnest_insert
from sqlalchemy import DateTime, MetaData


def test_the_insert_names_every_outbox_column_in_order_with_one_value_each() -> None:
    values = [f"v{i}" for i in range(len(OUTBOX_COLUMNS))]
    assert outbox_insert(values) == (f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) SELECT {', '.join(values)}")
    with pytest.raises(ValueError, match="one value per outbox column"):
        outbox_insert(values[:-1])


def test_the_unnest_insert_takes_one_typed_array_per_column_from_the_given_parameter() -> None:
    statement = outbox_unnest_insert(first_param=3)
    assert statement.startswith("INSERT INTO outbox (event_id, topic, key, payload, headers, created_at) SELECT u.")
    assert "unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])" in statement
    assert statement.endswith("AS u(event_id, topic, key, payload, headers, created_at)")


def test_the_array_types_are_the_tables_column_types() -> None:
    table = outbox_table(MetaData())
    statement = outbox_unnest_insert()
    for i, name in enumerate(OUTBOX_COLUMNS):
        kind = "timestamptz" if isinstance(table.c[name].type, DateTime) else "text"
        assert f"${i + 1}::{kind}[]" in statement, name
