"""`common.pagination`: cursors round-trip, and the paging parameters document and take what the contract
says (`limit` 1 … 500, `cursor` one of ours)."""

from __future__ import annotations

import uuid

import pytest
from common.openapi_types import CURSOR
from common.pagination import PageCursor, PageLimit, decode_cursor, encode_cursor
from fastapi import FastAPI
from fastapi.testclient import TestClient

ITEM = uuid.UUID("0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a01")


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/things")
    async def things(limit: PageLimit = 50, cursor: PageCursor = None) -> dict[str, object]:
        return {"limit": limit, "after": str(decode_cursor(cursor)) if cursor else None}

    return app


def test_a_cursor_reads_back_as_its_id_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor(ITEM)) == ITEM
    with pytest.raises(ValueError, match="not a valid cursor"):
        decode_cursor("!!")


def test_the_document_states_the_bounds() -> None:
    parameters = {p["name"]: p for p in _app().openapi()["paths"]["/things"]["get"]["parameters"]}
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 500, 50)
    assert parameters["cursor"]["schema"]["anyOf"][0]["pattern"] == CURSOR


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "cursor=short", f"cursor={encode_cursor(ITEM)}x"])
def test_out_of_bounds_is_422(query: str) -> None:
    assert TestClient(_app()).get(f"/things?{query}").status_code == 422


def test_the_defaults_and_a_cursor_of_ours_are_taken() -> None:
    client = TestClient(_app())
    assert client.get("/things").json() == {"limit": 50, "after": None}
    assert client.get(f"/things?limit=500&cursor={encode_cursor(ITEM)}").json() == {"limit": 500, "after": str(ITEM)}
