"""`common.openapi_types` accepts exactly what its documented schema says, and `contract.load` scopes an
extra accepted status to the operations named."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import pytest
from common.openapi_types import COUNTRY, CURSOR, DOC_DATE, Day
from common.pagination import encode_cursor
from common.testing.contract import load
from fastapi import FastAPI
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

DAY = TypeAdapter(Day)


@pytest.mark.parametrize("value", ["1949-01-01", "2100-12-31", "2024-02-29"])
def test_a_day_in_range_is_taken_and_matches_the_documented_pattern(value: str) -> None:
    assert DAY.validate_json(f'"{value}"') == date.fromisoformat(value)
    assert re.fullmatch(DOC_DATE, value)


@pytest.mark.parametrize("value", ['"1948-12-31"', '"2101-01-01"', '"2025-02-30"', "0", '"20250101"', "true"])
def test_a_day_out_of_range_or_not_yyyy_mm_dd_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        DAY.validate_json(value)


def test_the_day_schema_states_the_bounds_as_a_pattern() -> None:
    assert DAY.json_schema() == {"type": "string", "format": "date", "pattern": DOC_DATE}


def test_country_is_either_case_but_no_unicode_look_alike() -> None:
    assert re.fullmatch(COUNTRY, "de") and re.fullmatch(COUNTRY, "DE")
    assert not re.fullmatch(COUNTRY, "ıt") and not re.fullmatch(COUNTRY, "XX")  # dotless i upper-cases to I


def test_our_cursors_match_the_documented_pattern() -> None:
    assert re.fullmatch(CURSOR, encode_cursor("0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a01"))


class _Body(BaseModel):
    n: Annotated[int, Field(ge=0)]


def _document() -> dict[str, Any]:
    app = FastAPI()

    @app.post("/a")
    async def a(body: _Body) -> None: ...

    @app.post("/b")
    async def b(body: _Body) -> None: ...

    return app.openapi()


def _expected(schema: Any, path: str) -> list[str]:
    operation = schema[path]["POST"]
    return list(schema.config.checks_config_for(operation=operation).positive_data_acceptance.expected_statuses)


def test_accepted_at_adds_a_status_for_the_operation_named_only() -> None:
    schema = load(_document(), accepted_at={"POST /a": [422]})
    assert "422" in _expected(schema, "/a") and "422" not in _expected(schema, "/b")


def test_accepted_at_refuses_an_operation_the_document_lacks() -> None:
    with pytest.raises(ValueError, match="no such operations"):
        load(_document(), accepted_at={"POST /c": [422]})
