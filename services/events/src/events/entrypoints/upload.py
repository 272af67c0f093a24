"""The spreadsheet uploader: `events upload FILE.xlsx|FILE.csv --token ... --url ...`.

Rows are validated locally with the service's own models, posted in batches to
`POST /v1/events/batch`, and every rejected row (locally or by the service) is written to a CSV
report. Re-running after an interruption is safe: the service recognises rows already recorded by
their `external_ref` and answers `unchanged`, so nothing is recorded twice.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import ValidationError
from tqdm import tqdm

from events.domain.model import EventCreate, explain

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
HEADERS: tuple[str, ...] = tuple(f"{zh} {en}" for zh, en in COLUMNS)
HELP: dict[str, tuple[str, str]] = {
    "external_ref": (
        "必填。本单位对该活动的唯一编号，重复上传不会重复登记。",
        "Required. Your own unique id of the event.",
    ),
    "title": ("必填，1–500 字。", "Required, 1–500 characters."),
    "type": (
        "必填：conference, forum, dialogue, delegation_in, delegation_out, youth_camp, exhibition, training, "
        "online, other",
        "Required, one of the listed types.",
    ),
    "start_date": ("必填，格式 2025-05-10。", "Required, ISO date."),
    "end_date": ("必填，不早于开始日期。", "Required, on or after start_date."),
    "host_country": ("ISO 3166 两位国家代码，默认 CN。", "ISO 3166-1 alpha-2; CN when empty."),
    "host_province": ("境内举办（非线上）时必填：GB/T 2260 省级代码，如 440000。", "Required in China unless online."),
    "city": ("可选。", "Optional."),
    "participants": ("参加人数，≥ 0。", "≥ 0."),
    "foreign_participants": ("境外参加人数，0 至参加人数。", "0 … participants."),
    "papers": ("交流论文数，≥ 0。", "≥ 0."),
    "countries": ("参与的外方国家代码，用逗号分隔，不含 CN，如 DE,FR。", "Partner countries, comma-separated, no CN."),
    "partner_org_ids": ("可选，合作机构编号（UUID），逗号分隔。", "Optional partner organization ids."),
    "fields": ("可选，领域，逗号分隔。", "Optional, comma-separated."),
    "target_groups": ("可选，目标群体，逗号分隔。", "Optional, comma-separated."),
    "flagship": ("是/否。", "yes/no."),
    "organizer_kind": ("仅总部管理员代其他单位上传时填写：province / society / hq。", "Only for hq admins."),
    "organizer_code": ("同上：组织单位代码，如 440000。", "Only for hq admins."),
}
_BY_LABEL = {zh: en for zh, en in COLUMNS} | {en: en for _zh, en in COLUMNS}
LIST_FIELDS = {"countries", "partner_org_ids", "fields", "target_groups"}
INT_FIELDS = {"participants", "foreign_participants", "papers"}
_SPLIT = re.compile(r"[,;，；、\s]+")
_TRUE = {"1", "true", "yes", "y", "是", "√", "x"}
_FALSE = {"0", "false", "no", "n", "否", ""}
MAX_ATTEMPTS = 6


class SheetError(ValueError):
    """The file cannot be read as an events sheet (wrong headers, unknown format)."""


def field_of(header: object) -> str | None:
    """The event field of a header cell: "外部编号 external_ref", "external_ref" and "外部编号" all work."""
    text = str(header or "").strip()
    if not text:
        return None
    if text in _BY_LABEL:
        return _BY_LABEL[text]
    for part in reversed(text.split()):
        if part in _BY_LABEL:
            return _BY_LABEL[part]
    raise SheetError(f"unknown column {text!r}; use the template's headers")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, {field: raw cell value}) for every non-empty row."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from _rows(csv.reader(handle))
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            yield from _rows(sheet.iter_rows(values_only=True))
        finally:
            workbook.close()
    else:
        raise SheetError(f"{path.name}: expected a .xlsx or .csv file")


def _rows(rows: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    iterator = iter(rows)
    try:
        header = next(iterator)
    except StopIteration:
        return
    fields = [field_of(h) for h in header]
    for number, row in enumerate(iterator, start=2):
        values = {f: v for f, v in zip(fields, row, strict=False) if f is not None and not _blank(v)}
        if values:
            yield number, values


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """A batch item from a row's cells (spreadsheet types and conventions turned into JSON)."""
    item: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            value = value.date().isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        if name in LIST_FIELDS:
            item[name] = [part for part in _SPLIT.split(str(value).strip()) if part]
        elif name in INT_FIELDS:
            item[name] = _integer(value)
        elif name == "flagship":
            text = str(value).strip().lower()
            item[name] = True if text in _TRUE else False if text in _FALSE else value
        elif name in ("organizer_kind", "organizer_code"):
            continue
        else:
            item[name] = _text(value)
    if "organizer_kind" in values or "organizer_code" in values:
        item["organizer"] = {
            "kind": _text(values.get("organizer_kind", "")),
            "code": _text(values.get("organizer_code", "")),
        }
    return item


def _integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a province code typed as a number: 440000.0
    return str(value).strip()


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


def _describe(errors: Sequence[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", [])]
        if len(loc) >= 2 and loc[0] == "events":
            loc = loc[2:]  # the server's item index; the report has the row number instead
        parts.append(f"{'.'.join(loc) or 'row'}: {error.get('msg', '')}")
    return "; ".join(parts)


class Uploader:
    def __init__(self, client: httpx.Client, *, batch_size: int, report: IO[str]) -> None:
        self.client = client
        self.batch_size = batch_size
        self.writer = csv.writer(report)
        self.report = report
        self.writer.writerow(["row", "external_ref", "stage", "status", "errors"])

    def reject(self, summary: Summary, rejection: Rejection) -> None:
        summary.rejected.append(rejection)
        self.writer.writerow(
            [rejection.row, rejection.external_ref or "", rejection.stage, rejection.status, rejection.errors]
        )
        self.report.flush()

    def run(self, path: Path, progress: bool = True) -> Summary:
        summary = Summary()
        valid: list[tuple[int, dict[str, Any]]] = []
        for number, values in read_rows(path):
            summary.rows += 1
            item = to_item(values)
            try:
                EventCreate.model_validate(item)
            except ValidationError as exc:
                ref = item.get("external_ref")
                errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in explain(exc.errors())]
                self.reject(
                    summary,
                    Rejection(number, ref if isinstance(ref, str) else None, "local", "rejected", _describe(errors)),
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
                        reason = _describe(result.get("errors") or [])
                        if status == "conflict":
                            reason = f"{reason} (existing event {result.get('id')})"
                        self.reject(summary, Rejection(number, item.get("external_ref"), "server", status, reason))
                bar.update(len(chunk))
        return summary

    def _post(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.client.post("/v1/events/batch", json={"events": items})
            except httpx.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise UploadFailed(f"the service is unreachable: {exc}") from exc
            else:
                if response.status_code == 200:
                    answer: dict[str, Any] = response.json()
                    return answer
                if response.status_code < 500 and response.status_code != 429:
                    raise UploadFailed(_problem_text(response))
                if attempt == MAX_ATTEMPTS:
                    raise UploadFailed(_problem_text(response))
            time.sleep(delay)  # a transient failure: the batch is safe to resend (idempotent)
            delay = min(delay * 2, 8)
        raise UploadFailed("unreachable")  # pragma: no cover


class UploadFailed(RuntimeError):
    pass


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
        return f"{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}"
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the events sheet (.xlsx or .csv, headers as in the template)")
    parser.add_argument("--token", default=os.environ.get("EXCHANGE_TOKEN"), help="bearer token (or EXCHANGE_TOKEN)")
    parser.add_argument("--url", default=os.environ.get("EVENTS_URL", "http://127.0.0.1:8002"), help="events service")
    parser.add_argument("--batch-size", type=int, default=500, help="events per request (1–1000, default 500)")
    parser.add_argument("--report", type=Path, help="rejected-rows CSV (default: FILE.rejected.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


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
    notes = workbook.create_sheet("说明 help")
    notes.append(["列 column", "说明", "notes", "示例 example"])
    example = {
        "external_ref": "GD-2025-0042",
        "title": "中德氢能论坛 China–Germany Forum on Hydrogen Energy",
        "type": "forum",
        "start_date": "2025-05-10",
        "end_date": "2025-05-12",
        "host_country": "CN",
        "host_province": "440000",
        "city": "广州 Guangzhou",
        "participants": "320",
        "foreign_participants": "85",
        "papers": "64",
        "countries": "DE,FR",
        "partner_org_ids": "",
        "fields": "energy",
        "target_groups": "young_scientist",
        "flagship": "否",
        "organizer_kind": "",
        "organizer_code": "",
    }
    for header, (_zh, en) in zip(HEADERS, COLUMNS, strict=True):
        notes.append([header, HELP[en][0], HELP[en][1], example[en]])
    workbook.properties.creator = "exchange-tracker"
    # A fixed timestamp keeps the checked-in file byte-stable when regenerated.
    workbook.properties.created = workbook.properties.modified = datetime(2026, 1, 1)
    workbook.save(directory / "events_template.xlsx")
    with (directory / "events_template.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerow(HEADERS)
