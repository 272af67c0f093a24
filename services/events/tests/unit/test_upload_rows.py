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
    assert item["countries"] == ["DE", "FR", "JP"] and item["flagship"] is True
    assert EventCreate.model_validate(item).countries == ["DE", "FR", "JP"]


def test_organizer_columns_become_the_organizer_object():
    item = to_item({"organizer_kind": "province", "organizer_code": 440000})
    assert item["organizer"] == {"kind": "province", "code": "440000"}


def test_unknown_header_is_refused():
    with pytest.raises(SheetError):
        field_of("备注 remarks")


def test_a_row_typed_the_way_people_type_it():
    from events.entrypoints.upload import parse_row

    item, problems = parse_row(
        {
            "type": "国际会议",
            "start_date": "2026/5/6",
            "end_date": "2026年5月8日",
            "host_country": "中国",
            "host_province": "广西",
            "countries": "德国、France，vn",
            "flagship": "否",
        }
    )
    assert not problems
    assert item == {
        "type": "conference",
        "start_date": "2026-05-06",
        "end_date": "2026-05-08",
        "host_country": "CN",
        "host_province": "450000",
        "countries": ["DE", "FR", "VN"],
        "flagship": False,
    }


def test_what_cannot_be_read_is_named_in_either_language():
    from events.entrypoints.upload import parse_row

    _item, problems = parse_row({"type": "聚会", "start_date": "5/6/2026", "countries": "刚果", "flagship": "也许"})
    assert sorted(problems) == ["countries", "flagship", "start_date", "type"]
    assert "2026-05-06" in problems["start_date"].say("zh") and "2026-06-05" in problems["start_date"].say("zh")
    assert "CD" in problems["countries"].say("zh") and "CG" in problems["countries"].say("zh")
    assert problems["type"].say("zh").startswith("'聚会' 不是可选的活动类型之一") and "会议 conference" in problems[
        "type"
    ].say("zh")
    assert problems["flagship"].say("en") == "'也许' is not yes or no: type 是 or 否 (true or false)"
