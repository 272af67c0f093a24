"""The shared spreadsheet readers: cells as people type them (one reader per kind of cell, for every
uploader), sheets by their bilingual headers, the report's wording."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from common.spreadsheets import (
    CellError,
    Columns,
    SheetError,
    Vocabulary,
    describe,
    integer,
    items,
    read_bool,
    read_countries,
    read_date,
    read_list,
    read_province,
    read_sheet,
    text,
)

GROUPS = Vocabulary(
    "groups",
    {
        "engineer": {"zh": "工程师", "en": "Engineers"},
        "young_scientist": {"zh": "青年科学家", "en": "Young scientists"},
    },
)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("是", True), ("否", False), ("TRUE", True), ("false", False), ("Yes", True), ("n", False), (1.0, True),
     (0, False), ("√", True), ("×", False), ("１", True), (True, True), ("", False)],
)  # fmt: skip
def test_one_boolean_reader_for_every_uploader(typed: object, meant: bool) -> None:
    assert read_bool(typed) is meant


def test_a_cell_that_is_not_yes_or_no_is_named_in_either_language() -> None:
    with pytest.raises(CellError) as caught:
        read_bool("也许")
    assert caught.value.say("zh") == "无法识别 '也许'：请填写“是”或“否”（true 或 false）"


def test_dates_in_the_common_forms() -> None:
    for typed in ("2026-05-06", "2026/5/6", "2026.5.6", "2026年5月6日", datetime(2026, 5, 6), 46148):
        assert read_date(typed) == date(2026, 5, 6), typed
    with pytest.raises(CellError) as caught:
        read_date("5/6/2026")
    assert "2026-05-06" in caught.value.say("zh") and "2026-06-05" in caught.value.say("zh")


def test_plain_cells() -> None:
    assert (text(440000.0), text(" 王芳 "), text(datetime(2026, 5, 6, 0, 0))) == ("440000", "王芳", "2026-05-06")
    assert (integer(1978.0), integer(" 1978 "), integer("一九七八")) == (1978, 1978, "一九七八")
    assert items("energy, materials、能源 材料") == ["energy", "materials", "能源", "材料"]


def test_lists_of_labels_and_of_countries() -> None:
    assert read_list("工程师、Young scientists", GROUPS.read) == ["engineer", "young_scientist"]
    assert read_list("engineer young_scientist", GROUPS.read) == ["engineer", "young_scientist"]
    assert read_list("工程师 engineer", GROUPS.read) == ["engineer"]  # a dropdown choice
    assert read_countries("德国、France，vn") == ["DE", "FR", "VN"]
    assert read_province("广西") == "450000"
    with pytest.raises(CellError) as caught:
        read_list("工程师、聚会", GROUPS.read)
    assert caught.value.say("zh").startswith("'聚会' 不是可选的群体之一")


def test_a_sheet_by_its_bilingual_headers(tmp_path: Path) -> None:
    columns = Columns([("编号", "external_id"), ("姓名", "name")])
    path = tmp_path / "pool.csv"
    path.write_text("姓名,external_id\n王芳,A-1\n,\n李雷,A-2\n", encoding="utf-8-sig")
    assert list(read_sheet(path, columns)) == [
        (2, {"name": "王芳", "external_id": "A-1"}),
        (4, {"name": "李雷", "external_id": "A-2"}),
    ]
    path.write_text("备注\nx\n", encoding="utf-8")
    with pytest.raises(SheetError):
        list(read_sheet(path, columns))


def test_a_report_names_columns_in_the_users_language() -> None:
    errors = [{"loc": ["records", "3", "birth_year"], "msg": "Field required"}, {"loc": [], "msg": "Field required"}]
    assert (
        describe(errors, "zh", labels={"birth_year": "出生年份"}, batch="records")
        == "出生年份: 必填字段; 整行: 必填字段"
    )
    assert describe(errors, "en", labels={"birth_year": "出生年份"}, batch="records") == (
        "birth_year: Field required; row: Field required"
    )
