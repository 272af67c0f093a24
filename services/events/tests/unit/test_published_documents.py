"""The checked-in AsyncAPI document and spreadsheet templates are the ones the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from events.contracts import PUBLISHED_EVENTS, asyncapi
from events.entrypoints.upload import HEADERS, field_of, read_rows, write_templates

SERVICE_DIR = Path(__file__).resolve().parents[2]


def test_checked_in_asyncapi_matches_the_code():
    checked_in = json.loads((SERVICE_DIR / "asyncapi.json").read_text())
    assert checked_in == asyncapi(), "regenerate: uv run events asyncapi > services/events/asyncapi.json"


def test_asyncapi_lists_the_three_event_types_with_the_state_schema():
    document = asyncapi()
    names = {m["name"] for m in document["components"]["messages"].values()}
    assert names == {"exchange.event.recorded", "exchange.event.updated", "exchange.event.cancelled"}
    data = document["components"]["messages"]["event_recorded"]["payload"]["properties"]["data"]
    assert {"id", "organizer", "external_ref", "version", "status", "countries"} <= set(data["properties"])
    assert len(PUBLISHED_EVENTS) == 3


def test_templates_are_current_and_readable(tmp_path):
    write_templates(tmp_path)
    shipped = SERVICE_DIR / "templates"
    assert (tmp_path / "events_template.csv").read_bytes() == (shipped / "events_template.csv").read_bytes()
    for name in ("events_template.csv", "events_template.xlsx"):
        assert list(read_rows(shipped / name)) == []  # headers only, all recognised
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in h) and h.isascii() is False for h in HEADERS)
    assert field_of("外部编号 external_ref") == field_of("external_ref") == field_of("外部编号") == "external_ref"
