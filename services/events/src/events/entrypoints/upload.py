"""The spreadsheet uploader: `events upload FILE.xlsx|FILE.csv --token ... --url ...`.

Rows are validated locally with the service's own models, posted in batches to
`POST /v1/events/batch`, and every rejected row (locally or by the service) is written to a CSV
report. Re-running after an interruption is safe: the service recognises rows already recorded by
their `external_ref` and answers `unchanged`, so nothing is recorded twice.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any

import httpx
from common.i18n import Lang
from common.spreadsheets import (
    CellError,
    Columns,
    RejectedRows,
    Vocabulary,
    add_dropdowns,
    country_choices,
    describe,
    integer,
    items,
    problem_text,
    province_choices,
    read_bool,
    read_countries,
    read_country,
    read_date,
    read_province,
    read_sheet,
    text,
)
from common.spreadsheets import SheetError as SheetError  # what the command line catches
from common.spreadsheets.client import add_client_arguments
from pydantic import ValidationError
from tqdm import tqdm

from events.domain.model import EventCreate, explain

# The event types with their labels, from this service's own published vocabulary; what people also
# type for a type, beside its code and labels.
EVENT_TYPES = Vocabulary(
    "event_types",
    json.loads(resources.files("events.contracts").joinpath("vocabulary.json").read_text("utf-8"))["event_types"],
    aliases={
        "国际会议": "conference",
        "学术会议": "conference",
        "研讨会": "conference",
        "峰会": "conference",
        "展会": "exhibition",
        "夏令营": "youth_camp",
        "冬令营": "youth_camp",
        "培训班": "training",
        "来访": "delegation_in",
        "出访": "delegation_out",
        "线上会议": "online",
    },
)

# (Chinese label, field): the template's headers are "<Chinese> <field>"; either half is enough.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("外部编号", "external_ref"),
    ("活动名称", "title"),
    ("活动类型", "type"),
    ("开始日期", "start_date"),
    ("结束日期", "end_date"),
    ("举办国家", "host_country"),
    ("举办省份", "host_province"),
    ("城市", "city"),
    ("参加人数", "participants"),
    ("境外参加人数", "foreign_participants"),
    ("交流论文数", "papers"),
    ("参与国家", "countries"),
    ("合作机构编号", "partner_org_ids"),
    ("领域", "fields"),
    ("目标群体", "target_groups"),
    ("旗舰项目", "flagship"),
    ("组织单位类型", "organizer_kind"),
    ("组织单位代码", "organizer_code"),
)
SHEET = Columns(COLUMNS)
HEADERS: tuple[str, ...] = SHEET.headers
HELP: dict[str, tuple[str, str]] = {
    "external_ref": (
        "必填。本单位对该活动的唯一编号，重复上传不会重复登记。",
        "Required. Your own unique id of the event.",
    ),
    "title": ("必填，1–500 字。", "Required, 1–500 characters."),
    "type": (
        "必填，从下拉列表选择，或填写类型名称或代码：" + "、".join(EVENT_TYPES.choices()),
        "Required: pick from the list, or type the label or the code.",
    ),
    "start_date": (
        "必填，日期单元格，或写成 2025-05-10、2025/5/10、2025.5.10、2025年5月10日。",
        "Required: a date cell, or 2025-05-10, 2025/5/10, 2025.5.10, 2025年5月10日.",
    ),
    "end_date": ("必填，不早于开始日期，格式同上。", "Required, on or after start_date; same forms."),
    "host_country": (
        "从下拉列表选择，或填写 ISO 两位代码、中文或英文国名；默认 CN。",
        "Pick from the list, or type the ISO code or the name in Chinese or English; CN when empty.",
    ),
    "host_province": (
        "境内举办（非线上）时必填：从下拉列表选择，或填写省份名称（广西）或 GB/T 2260 代码（450000）。",
        "Required in China unless online: pick from the list, or type the name or the code.",
    ),
    "city": ("可选。", "Optional."),
    "participants": ("参加人数，≥ 0。", "≥ 0."),
    "foreign_participants": ("境外参加人数，0 至参加人数。", "0 … participants."),
    "papers": ("交流论文数，≥ 0。", "≥ 0."),
    "countries": (
        "参与的外方国家，代码或国名，用逗号或顿号分隔，不含中国，如 德国、法国 或 DE,FR。",
        "Partner countries by code or name, comma-separated, no CN.",
    ),
    "partner_org_ids": ("可选，合作机构编号（UUID），逗号分隔。", "Optional partner organization ids."),
    "fields": ("可选，领域，逗号分隔。", "Optional, comma-separated."),
    "target_groups": ("可选，目标群体，逗号分隔。", "Optional, comma-separated."),
    "flagship": ("是/否（true/false）。", "是/否 or true/false."),
    "organizer_kind": ("仅总部管理员代其他单位上传时填写：province / society / hq。", "Only for hq admins."),
    "organizer_code": ("同上：组织单位代码，如 440000。", "Only for hq admins."),
}
LIST_FIELDS = {"countries", "partner_org_ids", "fields", "target_groups"}
INT_FIELDS = {"participants", "foreign_participants", "papers"}
DATE_FIELDS = {"start_date", "end_date"}
MAX_ATTEMPTS = 6


def field_of(header: object) -> str | None:
    """The event field of a header cell: "外部编号 external_ref", "external_ref" and "外部编号" all work."""
    return SHEET.field_of(header)


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, {field: raw cell value}) for every non-empty row of the first sheet."""
    return read_sheet(path, SHEET)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """A batch item from a row's cells (spreadsheet types and conventions turned into JSON)."""
    return parse_row(values)[0]


def parse_row(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, CellError]]:
    """A batch item from a row's cells, and the cells that could not be read (left as typed in the item,
    where the models refuse them too: the report names the reading's problem instead)."""
    item: dict[str, Any] = {}
    problems: dict[str, CellError] = {}
    for name, value in values.items():
        if name in ("organizer_kind", "organizer_code"):
            continue
        try:
            item[name] = _cell(name, value)
        except CellError as exc:
            problems[name] = exc
            item[name] = text(value)
    if "organizer_kind" in values or "organizer_code" in values:
        item["organizer"] = {
            "kind": text(values.get("organizer_kind", "")),
            "code": text(values.get("organizer_code", "")),
        }
    return item, problems


def _cell(name: str, value: Any) -> Any:
    if name in DATE_FIELDS:
        return read_date(value).isoformat()
    if name == "type":
        return EVENT_TYPES.read(value)
    if name == "flagship":
        return read_bool(value)
    if name == "host_country":
        return read_country(value)
    if name == "host_province":
        return read_province(value)
    if name == "countries":
        return read_countries(value)
    if name in LIST_FIELDS:
        return items(value)
    if name in INT_FIELDS:
        return integer(value)
    return text(value)


@dataclass
class Rejection:
    row: int
    external_ref: str | None
    stage: str
    status: str
    errors: str


@dataclass
class Summary:
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def _describe(errors: Sequence[dict[str, Any]], lang: Lang = "en") -> str:
    return describe(errors, lang, labels=SHEET.labels, batch="events")


REPORT_COLUMNS = ("row", "external_ref", "stage", "status", "errors")


class Uploader:
    def __init__(self, client: httpx.Client, *, batch_size: int, report: IO[str], lang: Lang = "en") -> None:
        self.client = client
        self.batch_size = batch_size
        self.lang = lang
        self.report = RejectedRows(report, REPORT_COLUMNS, lang)

    def reject(self, summary: Summary, rejection: Rejection) -> None:
        summary.rejected.append(rejection)
        stage, status = self.report.say(f"sheet.stage.{rejection.stage}"), rejection.status
        if status in ("rejected", "conflict"):
            status = self.report.say(f"sheet.status.{status}")
        self.report.write([rejection.row, rejection.external_ref or "", stage, status, rejection.errors])

    def run(self, path: Path, progress: bool = True) -> Summary:
        summary = Summary()
        valid: list[tuple[int, dict[str, Any]]] = []
        for number, values in read_rows(path):
            summary.rows += 1
            item, problems = parse_row(values)
            errors: list[dict[str, Any]] = [
                {"loc": [name], "msg": problem.say(self.lang)} for name, problem in problems.items()
            ]
            try:
                EventCreate.model_validate(item)
            except ValidationError as exc:  # a cell already reported is not reported twice
                errors += [e for e in explain(exc.errors()) if not e["loc"] or e["loc"][0] not in problems]
            if errors:
                ref = item.get("external_ref")
                reason = _describe(errors, self.lang)
                self.reject(
                    summary, Rejection(number, ref if isinstance(ref, str) else None, "local", "rejected", reason)
                )
                continue
            valid.append((number, item))
        with tqdm(total=summary.rows, unit="row", disable=not progress, file=sys.stderr) as bar:
            bar.update(summary.rows - len(valid))
            for start in range(0, len(valid), self.batch_size):
                chunk = valid[start : start + self.batch_size]
                answer = self._post([item for _n, item in chunk])
                for (number, item), result in zip(chunk, answer["items"], strict=True):
                    status = result["status"]
                    if status == "created":
                        summary.created += 1
                    elif status == "unchanged":
                        summary.unchanged += 1
                    else:
                        reason = _describe(result.get("errors") or [], self.lang)
                        if status == "conflict":
                            reason = self.report.say("sheet.existing_event", reason=reason, id=result.get("id"))
                        self.reject(summary, Rejection(number, item.get("external_ref"), "server", status, reason))
                bar.update(len(chunk))
        return summary

    def _post(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.client.post(
                    "/v1/events/batch", json={"events": items}, headers={"Accept-Language": self.lang}
                )
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise UploadFailed(f"the service is unreachable: {exc}") from exc
            else:
                if response.status_code == 200:
                    answer: dict[str, Any] = response.json()
                    return answer
                if response.status_code < 500 and response.status_code != 429:
                    raise UploadFailed(problem_text(response))
                if attempt == MAX_ATTEMPTS:
                    raise UploadFailed(problem_text(response))
            time.sleep(delay)  # a transient failure: the batch is safe to resend (idempotent)
            delay = min(delay * 2, 8)
        raise UploadFailed("unreachable")  # pragma: no cover


class UploadFailed(RuntimeError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the events sheet (.xlsx or .csv, headers as in the template)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per request (1–1000, default 500)")
    add_client_arguments(parser, "events", default_url="http://127.0.0.1:8002", lang_of="the rejected-rows report")


EXAMPLE: dict[str, str] = {
    "external_ref": "GD-2025-0042",
    "title": "中德氢能论坛 China–Germany Forum on Hydrogen Energy",
    "type": "论坛",
    "start_date": "2025/5/10",
    "end_date": "2025年5月12日",
    "host_country": "中国",
    "host_province": "广东",
    "city": "广州 Guangzhou",
    "participants": "320",
    "foreign_participants": "85",
    "papers": "64",
    "countries": "德国、法国",
    "fields": "energy",
    "target_groups": "young_scientist",
    "flagship": "否",
}


def _add_dropdowns(workbook: Any, sheet: Any) -> None:
    """Lists for the type, country, province and flagship columns; typing something else is allowed, and read."""
    choices = {
        "type": EVENT_TYPES.choices(),
        "host_country": country_choices(),
        "countries": country_choices(),
        "host_province": province_choices(),
        "flagship": ["是", "否"],
    }
    add_dropdowns(workbook, sheet, SHEET, choices, {name: HELP[name][0] for name in choices})


def write_templates(directory: Path) -> None:
    """Write events_template.xlsx (with a help sheet) and events_template.csv."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    directory.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "events"
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, header in enumerate(HEADERS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(14, len(header) + 4)
    sheet.freeze_panes = "A2"
    _add_dropdowns(workbook, sheet)
    notes = workbook.create_sheet("说明 help")
    notes.append(["列 column", "说明", "notes", "示例 example"])
    for header, (_zh, en) in zip(HEADERS, COLUMNS, strict=True):
        notes.append([header, HELP[en][0], HELP[en][1], EXAMPLE.get(en, "")])
    # The example as people type it (labels, names, slashes): the uploader reads only the first sheet.
    example = workbook.create_sheet("示例 example")
    example.append(list(HEADERS))
    example.append([EXAMPLE.get(en, "") for _zh, en in COLUMNS])
    workbook.properties.creator = "exchange-tracker"
    # A fixed timestamp keeps the checked-in file byte-stable when regenerated.
    workbook.properties.created = workbook.properties.modified = datetime(2026, 1, 1)
    workbook.save(directory / "events_template.xlsx")
    with (directory / "events_template.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerow(HEADERS)
