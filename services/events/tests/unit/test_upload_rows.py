"""Turning spreadsheet cells into event items (no service needed)."""

from __future__ import annotations

from datetime import datetime

import pytest
from events.domain.model import EventCreate
from events.entrypoints.upload import SheetError, field_of, to_item


def test_cells_become_a_valid_item():
    item = to_item(
        {
            "external_ref": 42.0,
            "title": " Forum ",
            "type": "forum",
            "start_date": datetime(2025, 5, 10),
            "end_date": "2025-05-12",
            "host_province": 440000.0,
            "participants": 320.0,
            "foreign_participants": "85",
            "countries": "DE，fr; JP",
            "flagship": "是",
        }
    )
    assert item["external_ref"] == "42" and item["host_province"] == "440000" and item["participants"] == 320
    assert item["countries"] == ["DE", "fr", "JP"] and item["flagship"] is True
    assert EventCreate.model_validate(item).countries == ["DE", "FR", "JP"]


def test_organizer_columns_become_the_organizer_object():
    item = to_item({"organizer_kind": "province", "organizer_code": 440000})
    assert item["organizer"] == {"kind": "province", "code": "440000"}


def test_unknown_header_is_refused():
    with pytest.raises(SheetError):
        field_of("备注 remarks")
