"""The annual report: every region a row, headers in Chinese and English."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.regions import region as region_of
from openpyxl import Workbook
from openpyxl.styles import Font

from reporting.read.queries import EVENT_TYPES, GROUPS, ROLES

# The dashboard's labels for event types, talent groups and post roles: one file for both.
LABELS_FILE = Path(__file__).resolve().parents[1] / "static" / "dashboard" / "labels.json"
_LABELS: dict[str, dict[str, dict[str, str]]] = json.loads(LABELS_FILE.read_text(encoding="utf-8"))


def _named(dictionary: str, key: str, lang: str) -> str:
    """A key's label; one added later than the labels reads as itself."""
    return _LABELS.get(dictionary, {}).get(key, {}).get(lang) or key


def _breakdown(path: str, dictionary: str, zh: str, en: str, keys: Sequence[str]) -> list[tuple[str, str, str]]:
    return [
        (f"{path}.{k}", f"{zh}：{_named(dictionary, k, 'zh')}", f"{en}: {_named(dictionary, k, 'en')}") for k in keys
    ]


COLUMNS: list[tuple[str, str, str]] = [
    ("region", "地区代码", "Region code"),
    ("name_zh", "地区", "Region (Chinese)"),
    ("name", "地区（英文）", "Region"),
    ("kind", "类别", "Kind"),
    ("partners.organizations", "合作组织", "Partner organizations"),
    ("partners.agreements_signed", "签署协议", "Agreements signed"),
    ("partners.agreements_active", "有效协议", "Agreements active"),
    ("partners.agreements_expiring_90d", "90天内到期协议", "Agreements expiring in 90 days"),
    ("partners.countries", "合作国家", "Partner countries"),
    ("events.count", "活动", "Events"),
    ("events.participants", "参加人数", "Participants"),
    ("events.foreign_participants", "外方人数", "Foreign participants"),
    ("events.papers", "论文", "Papers"),
    ("events.countries", "涉及国家", "Countries reached"),
    *_breakdown("events.by_type", "eventTypes", "活动", "Events", EVENT_TYPES),
    ("talent.persons", "人才", "People"),
    *_breakdown("talent.by_group", "groups", "人才", "People", GROUPS),
    ("talent.reserve", "后备人才", "Reserve pool"),
    ("talent.posts", "国际组织任职", "Posts in international organizations"),
    *_breakdown("talent.posts_by_role", "roles", "任职", "Posts", ROLES),
]


def headers() -> list[str]:
    return [f"{zh} {en}" for _key, zh, en in COLUMNS]


def _cell(obj: dict[str, Any], key: str) -> Any:
    value: Any = obj
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def rows(objects: Sequence[dict[str, Any]]) -> list[list[Any]]:
    table = []
    for obj in objects:
        r = region_of(obj["region"])
        enriched = {**obj, "name": r.name, "name_zh": r.name_zh, "kind": r.kind}
        table.append([_cell(enriched, key) for key, _zh, _en in COLUMNS])
    return table


def to_csv(objects: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers())
    writer.writerows(rows(objects))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel then reads the Chinese headers right


def to_xlsx(objects: Sequence[dict[str, Any]], year: int | None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = f"{year}" if year else "all years"
    sheet.append(headers())
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows(objects):
        sheet.append(row)
    sheet.freeze_panes = "E2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
