"""The annual report: every region a row, headers in Chinese and English."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from common.regions import region as region_of
from openpyxl import Workbook
from openpyxl.styles import Font

from reporting.catalogue import METRICS, Metric, keys_of, label

REGION_COLUMNS: list[tuple[str, str, str]] = [
    ("region", "地区代码", "Region code"),
    ("name_zh", "地区", "Region (Chinese)"),
    ("name", "地区（英文）", "Region"),
    ("kind", "类别", "Kind"),
]


def _metric_columns(m: Metric, extra_keys: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    if not m.vocabulary:
        return [(m.key, m.zh, m.en)]
    keys = [*keys_of(m.vocabulary), *extra_keys]
    return [
        (f"{m.key}.{k}", f"{m.zh}：{label(m.vocabulary, k, 'zh')}", f"{m.en}: {label(m.vocabulary, k, 'en')}")
        for k in keys
    ]


def columns(objects: Sequence[dict[str, Any]] = ()) -> list[tuple[str, str, str]]:
    """The region's columns, then every catalogue metric (a breakdown: one column per vocabulary key,
    then one per key counted but not in the vocabulary yet — a figure is never dropped)."""
    result = list(REGION_COLUMNS)
    for m in METRICS:
        extra: list[str] = []
        if m.vocabulary:
            known = set(keys_of(m.vocabulary))
            for obj in objects:
                counted = _cell(obj, m.key) or {}
                extra += [k for k in counted if k not in known and k not in extra]
        result += _metric_columns(m, sorted(extra))
    return result


def headers(table_columns: Sequence[tuple[str, str, str]]) -> list[str]:
    return [f"{zh} {en}" for _key, zh, en in table_columns]


def _cell(obj: dict[str, Any], key: str) -> Any:
    value: Any = obj
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def rows(objects: Sequence[dict[str, Any]], table_columns: Sequence[tuple[str, str, str]]) -> list[list[Any]]:
    table = []
    for obj in objects:
        r = region_of(obj["region"])
        enriched = {**obj, "name": r.name, "name_zh": r.name_zh, "kind": r.kind}
        table.append([_cell(enriched, key) for key, _zh, _en in table_columns])
    return table


def to_csv(objects: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    table_columns = columns(objects)
    writer.writerow(headers(table_columns))
    writer.writerows(rows(objects, table_columns))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel then reads the Chinese headers right


def to_xlsx(objects: Sequence[dict[str, Any]], year: int | None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = f"{year}" if year else "all years"
    table_columns = columns(objects)
    sheet.append(headers(table_columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows(objects, table_columns):
        sheet.append(row)
    sheet.freeze_panes = "E2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
