"""The checked-in AsyncAPI document and spreadsheet templates are the ones the code generates; the
OpenAPI document describes every field and shows an example of every request and answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from events.config import EventsSettings
from events.contracts import PUBLISHED_EVENTS, asyncapi
from events.entrypoints.app import create_app
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


def _openapi() -> dict[str, Any]:
    settings = EventsSettings(database_url="sqlite+aiosqlite:///:memory:", jwt_secret="x" * 32, environment="test")
    return create_app(settings).openapi()


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    ref = media.get("schema", {}).get("$ref", "")
    return bool(ref) and "examples" in document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_openapi_describes_every_field():
    document = _openapi()
    undescribed = [
        f"{name}.{field}"
        for name, schema in document["components"]["schemas"].items()
        for field, spec in schema.get("properties", {}).items()
        if "description" not in spec and "$ref" not in spec
    ]
    assert undescribed == []


def test_openapi_shows_an_example_of_every_request_and_answer():
    document = _openapi()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [(status, answer.get("content", {})) for status, answer in operation["responses"].items()]
            for what, content in bodies:
                missing += [
                    f"{method} {path} {what} {kind}" for kind, m in content.items() if not _has_example(document, m)
                ]
    assert missing == []
