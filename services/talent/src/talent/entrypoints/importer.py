"""`talent import FILE.xlsx --mode full --token … --url …`: a society's pool from its spreadsheet.

The workbook has a people sheet and a posts sheet (see `services/talent/templates/`), headers in Chinese
and English. Rows are validated locally with the service's own model, the valid people are streamed to
`POST /v1/talent/sync` as application/x-ndjson with a progress bar, and every rejected row (locally or by
the service) is written with its reasons to a CSV report. Sending the file again is safe: unchanged people
answer `unchanged` and nothing is published twice.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
from common.spreadsheets import CellError, Columns, integer, items, problem_text, read_bool, read_sheet, text
from pydantic import ValidationError
from tqdm import tqdm

from talent.domain.model import PersonRecord

PEOPLE = Columns(
    [
        ("编号", "external_id"),
        ("姓名", "name"),
        ("英文姓名", "name_en"),
        ("性别", "gender"),
        ("出生年份", "birth_year"),
        ("人才类别", "groups"),
        ("常住国家", "country"),
        ("省份", "province"),
        ("工作单位", "affiliation"),
        ("电子邮箱", "email"),
        ("ORCID", "orcid"),
        ("专业领域", "fields"),
        ("后备人才", "reserve"),
        ("删除", "deleted"),
    ]
)
POSTS = Columns(
    [
        ("编号", "external_id"),
        ("国际组织", "organization"),
        ("组织所在国", "organization_country"),
        ("职务", "role"),
        ("任职开始", "start_date"),
        ("任职结束", "end_date"),
    ]
)
PEOPLE_SHEET, POSTS_SHEET = "people", "posts"
LIST_FIELDS = {"groups", "fields"}
_GENDER = {"女": "F", "男": "M", "f": "F", "m": "M"}


def person_of(values: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, value in values.items():
        if name in LIST_FIELDS:
            record[name] = items(value)
        elif name == "birth_year":
            record[name] = integer(value)
        elif name in ("reserve", "deleted"):
            try:
                record[name] = read_bool(value)
            except CellError:
                record[name] = text(value)  # refused by the model
        elif name == "gender":
            record[name] = _GENDER.get(text(value).lower(), text(value))
        else:
            record[name] = text(value)
    return record


def post_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: text(value) for name, value in values.items() if name != "external_id"}


@dataclass
class Summary:
    rows: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    rejected: int = 0


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", [])]
        if len(loc) >= 2 and loc[0] == "records":
            loc = loc[2:]  # the stream's index; the report has the row instead
        parts.append(f"{'.'.join(loc) or 'row'}: {error.get('msg', '')}")
    return "; ".join(parts)


class Importer:
    def __init__(self, client: httpx.Client, *, mode: str, report: IO[str], dry_run: bool = False) -> None:
        self.client = client
        self.mode = mode
        self.dry_run = dry_run
        self.report = report
        self.writer = csv.writer(report)
        self.writer.writerow(["sheet", "row", "external_id", "stage", "errors"])

    def reject(self, summary: Summary, sheet: str, row: int, external_id: object, stage: str, reason: str) -> None:
        summary.rejected += 1
        self.writer.writerow([sheet, row, external_id or "", stage, reason])
        self.report.flush()

    def run(self, path: Path, progress: bool = True) -> Summary:
        summary = Summary()
        people: dict[str, tuple[int, dict[str, Any]]] = {}
        for number, values in read_sheet(path, PEOPLE, PEOPLE_SHEET):
            summary.rows += 1
            person = person_of(values)
            key = person.get("external_id")
            if isinstance(key, str) and key in people:
                self.reject(summary, PEOPLE_SHEET, number, key, "local", "external_id: duplicate in this file")
                continue
            person.setdefault("posts", [])
            people[key if isinstance(key, str) else f"\x00{number}"] = (number, person)
        if path.suffix.lower() != ".csv":
            for number, values in read_sheet(path, POSTS, POSTS_SHEET):
                owner = people.get(text(values.get("external_id", "")))
                if owner is None:
                    self.reject(summary, POSTS_SHEET, number, values.get("external_id"), "local", "no such person")
                    continue
                owner[1]["posts"].append(post_of(values))
        valid: list[tuple[int, dict[str, Any]]] = []
        for number, person in people.values():
            try:
                PersonRecord.model_validate(person)
            except ValidationError as exc:
                reason = _describe([{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()])
                self.reject(summary, PEOPLE_SHEET, number, person.get("external_id"), "local", reason)
                continue
            valid.append((number, person))
        with tqdm(total=len(valid), unit="person", disable=not progress, file=sys.stderr) as bar:
            summary.answer = self._send(valid, bar)
        for rejection in summary.answer.get("rejected", []):
            number, person = valid[rejection["index"]]
            self.reject(
                summary, PEOPLE_SHEET, number, person.get("external_id"), "server", _describe(rejection["errors"])
            )
        return summary

    def _send(self, valid: list[tuple[int, dict[str, Any]]], bar: Any) -> dict[str, Any]:
        def body() -> Iterator[bytes]:
            for start in range(0, len(valid), 500):
                chunk = valid[start : start + 500]
                yield "".join(json.dumps(person, ensure_ascii=False) + "\n" for _n, person in chunk).encode()
                bar.update(len(chunk))

        params = {"mode": self.mode, "dry_run": str(self.dry_run).lower()}
        try:
            response = self.client.post(
                "/v1/talent/sync", params=params, content=body(), headers={"Content-Type": "application/x-ndjson"}
            )
        except httpx.TransportError as exc:
            raise ImportFailed(f"the service is unreachable or the stream broke off ({exc}); run again") from exc
        if response.status_code != 200:
            raise ImportFailed(problem_text(response))
        answer: dict[str, Any] = response.json()
        return answer


class ImportFailed(RuntimeError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the pool's workbook (.xlsx with people and posts sheets, or .csv)")
    parser.add_argument(
        "--mode", choices=("delta", "full"), default="delta", help="full: remove people not in the file"
    )
    parser.add_argument("--dry-run", action="store_true", help="show what the sync would do; change nothing")
    parser.add_argument("--token", default=os.environ.get("EXCHANGE_TOKEN"), help="bearer token (or EXCHANGE_TOKEN)")
    parser.add_argument("--url", default=os.environ.get("TALENT_URL", "http://127.0.0.1:8003"), help="talent service")
    parser.add_argument("--report", type=Path, help="rejected-rows CSV (default: FILE.rejected.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def write_template(directory: Path) -> None:
    """talent_template.xlsx: a people sheet and a posts sheet, bilingual headers, one example each."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    directory.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    people = workbook.active
    assert people is not None
    people.title = "people 人员"
    posts = workbook.create_sheet("posts 任职")
    example_person = [
        "CMES-000123",
        "王芳",
        "Wang Fang",
        "女",
        1978,
        "engineer, woman_scientist",
        "CN",
        "110000",
        "清华大学 Tsinghua University",
        "wang.fang@example.org",
        "0000-0002-1825-0097",
        "机械工程",
        "是",
        "否",
    ]
    example_post = [
        "CMES-000123",
        "World Federation of Engineering Organizations",
        "FR",
        "executive_board",
        "2023-10-01",
        "",
    ]
    for sheet, columns, example in ((people, PEOPLE, example_person), (posts, POSTS, example_post)):
        sheet.append(list(columns.headers))
        sheet.append(example)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    workbook.properties.creator = "exchange-tracker"
    workbook.properties.created = workbook.properties.modified = datetime(2026, 1, 1)
    workbook.save(directory / "talent_template.xlsx")
