"""The checked-in AsyncAPI document and template are the ones the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from talent.contracts import PUBLISHED_EVENTS, asyncapi
from talent.entrypoints.importer import PEOPLE, POSTS, write_template

SERVICE_DIR = Path(__file__).resolve().parents[2]


def test_checked_in_asyncapi_matches_the_code() -> None:
    checked_in = json.loads((SERVICE_DIR / "asyncapi.json").read_text())
    assert checked_in == asyncapi(), "regenerate: uv run talent asyncapi > services/talent/asyncapi.json"
    assert {e.type for e in PUBLISHED_EVENTS} == {"exchange.person.upserted", "exchange.person.removed"}


def test_template_is_current_and_bilingual(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    write_template(tmp_path)
    shipped = load_workbook(SERVICE_DIR / "templates" / "talent_template.xlsx")
    fresh = load_workbook(tmp_path / "talent_template.xlsx")
    assert [[c.value for c in row] for s in shipped.worksheets for row in s.iter_rows()] == [
        [c.value for c in row] for s in fresh.worksheets for row in s.iter_rows()
    ]
    for columns in (PEOPLE, POSTS):
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in h) or h.startswith("ORCID") for h in columns.headers)
        assert all(columns.field_of(h) == en for h, (_zh, en) in zip(columns.headers, columns.columns, strict=True))
