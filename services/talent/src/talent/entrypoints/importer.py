"""`talent import FILE.xlsx --mode full --token … --url … --lang zh`: a society's pool from its spreadsheet.

The workbook has a people sheet and a posts sheet (see `services/talent/templates/`), headers in Chinese
and English. Cells are read as people type them (`common.spreadsheets`): groups and roles by code or by
their Chinese or English label from this service's own vocabulary, dates as 2026/5/6 or 2026年5月6日,
是/否, countries and provinces by name. Rows are validated locally with the service's own model, the valid
people are streamed to `POST /v1/talent/sync` as application/x-ndjson with a progress bar, and every
rejected row (locally or by the service, asked in the user's language) is written with its reasons to a
CSV report in that language. Sending the file again is safe: unchanged people answer `unchanged` and
nothing is published twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
from common import spreadsheets as sheets
from common.i18n import Lang
from common.spreadsheets.client import add_client_arguments
from pydantic import ValidationError
from tqdm import tqdm

from talent.contracts import VOCABULARY
from talent.domain.model import PersonRecord

# The groups and roles with their labels, from this service's own published vocabulary; what people also
# type for them, beside the codes and labels.
GROUPS = sheets.Vocabulary(
    "groups", VOCABULARY["groups"], aliases={"女性科学家": "woman_scientist", "海外科学家": "overseas_expert"}
)
ROLES = sheets.Vocabulary(
    "roles",
    VOCABULARY["roles"],
    aliases={
        "会长": "president",
        "理事长": "president",
        "副会长": "vice_president",
        "副理事长": "vice_president",
        "执委会委员": "executive_board",
        "执行委员": "executive_board",
        "理事": "executive_board",
        "成员": "member",
    },
)

PEOPLE = sheets.Columns(
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
POSTS = sheets.Columns(
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
_GENDER = {"女": "F", "男": "M", "女性": "F", "男性": "M", "f": "F", "m": "M", "female": "F", "male": "M"}


def _cell(name: str, value: Any) -> Any:
    if name == "groups":
        return sheets.read_list(value, GROUPS.read)
    if name == "role":
        return ROLES.read(value)
    if name in ("country", "organization_country"):
        return sheets.read_country(value)
    if name == "province":
        return sheets.read_province(value)
    if name in ("start_date", "end_date"):
        return sheets.read_date(value).isoformat()
    if name in ("reserve", "deleted"):
        return sheets.read_bool(value)
    if name == "birth_year":
        return sheets.integer(value)
    if name == "fields":
        return sheets.items(value)
    if name == "gender":
        return _GENDER.get(sheets.text(value).lower(), sheets.text(value))
    return sheets.text(value)


def read_row(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, sheets.CellError]]:
    """A record (a person, or a post) from a row's cells, and the cells that could not be read (left as
    typed in the record, where the model refuses them too: the report names the reading's problem)."""
    record: dict[str, Any] = {}
    problems: dict[str, sheets.CellError] = {}
    for name, value in values.items():
        try:
            record[name] = _cell(name, value)
        except sheets.CellError as exc:
            problems[name] = exc
            record[name] = sheets.text(value)
    return record, problems


def person_of(values: dict[str, Any]) -> dict[str, Any]:
    return read_row(values)[0]


def post_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in read_row(values)[0].items() if name != "external_id"}


@dataclass
class Summary:
    rows: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    rejected: int = 0


REPORT_COLUMNS = ("sheet", "row", "external_id", "stage", "errors")
_LABELS = PEOPLE.labels | POSTS.labels | {"posts": "任职"}


class Importer:
    def __init__(
        self, client: httpx.Client, *, mode: str, report: IO[str], dry_run: bool = False, lang: Lang = "en"
    ) -> None:
        self.client = client
        self.mode = mode
        self.dry_run = dry_run
        self.lang = lang
        self.report = sheets.RejectedRows(report, REPORT_COLUMNS, lang)

    def describe(self, errors: list[dict[str, Any]]) -> str:
        return sheets.describe(errors, self.lang, labels=_LABELS, batch="records")

    def reject(self, summary: Summary, sheet: str, row: int, external_id: object, stage: str, reason: str) -> None:
        summary.rejected += 1
        where, when = self.report.say(f"sheet.name.{sheet}"), self.report.say(f"sheet.stage.{stage}")
        self.report.write([where, row, external_id or "", when, reason])

    def problems(self, problems: dict[str, sheets.CellError], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return [{"loc": [*prefix, name], "msg": problem.say(self.lang)} for name, problem in problems.items()]

    def run(self, path: Path, progress: bool = True) -> Summary:
        summary = Summary()
        people: dict[str, tuple[int, dict[str, Any], list[dict[str, Any]]]] = {}
        for number, values in sheets.read_sheet(path, PEOPLE, PEOPLE_SHEET):
            summary.rows += 1
            person, problems = read_row(values)
            key = person.get("external_id")
            if isinstance(key, str) and key in people:
                duplicate = [{"loc": ["external_id"], "msg": self.report.say("sheet.duplicate_in_file")}]
                self.reject(summary, PEOPLE_SHEET, number, key, "local", self.describe(duplicate))
                continue
            person.setdefault("posts", [])
            people[key if isinstance(key, str) else f"\x00{number}"] = (number, person, self.problems(problems))
        if path.suffix.lower() != ".csv":
            for number, values in sheets.read_sheet(path, POSTS, POSTS_SHEET):
                key = sheets.text(values.get("external_id", ""))
                owner = people.get(key)
                if owner is None:
                    reason = self.report.say("sheet.no_such_person")
                    self.reject(summary, POSTS_SHEET, number, values.get("external_id"), "local", reason)
                    continue
                post, problems = read_row(values)
                if problems:  # the person is not synced without the post (their row says why)
                    self.reject(summary, POSTS_SHEET, number, key, "local", self.describe(self.problems(problems)))
                    owner[2].append({"loc": [], "msg": self.report.say("sheet.post_rejected", row=number)})
                post.pop("external_id", None)
                owner[1]["posts"].append(post)
        valid: list[tuple[int, dict[str, Any]]] = []
        held: list[str] = []
        for number, person, errors in people.values():
            try:
                PersonRecord.model_validate(person)
            except ValidationError as exc:  # a cell already reported is not reported twice
                read = {str(e["loc"][0]) for e in errors if e["loc"]}
                errors = errors + [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"], "ctx": e.get("ctx")}
                    for e in exc.errors()
                    if not e["loc"] or str(e["loc"][0]) not in read
                ]
            if errors:
                key = person.get("external_id")
                self.reject(summary, PEOPLE_SHEET, number, key, "local", self.describe(errors))
                if isinstance(key, str) and key.strip():
                    held.append(key)
                continue
            valid.append((number, person))
        with tqdm(total=len(valid), unit="person", disable=not progress, file=sys.stderr) as bar:
            summary.answer = self._send(valid, held, bar)
        for rejection in summary.answer.get("rejected", []):
            if rejection["index"] >= len(valid):
                continue  # a held person, reported above
            number, person = valid[rejection["index"]]
            reason = self.describe(rejection["errors"])
            self.reject(summary, PEOPLE_SHEET, number, person.get("external_id"), "server", reason)
        return summary

    def _send(self, valid: list[tuple[int, dict[str, Any]]], held: list[str], bar: Any) -> dict[str, Any]:
        """The valid people, then a bare `{external_id}` for each person rejected here: the service refuses
        those too, and a full sync keeps them rather than removing someone for a typo in their row."""

        def body() -> Iterator[bytes]:
            for start in range(0, len(valid), 500):
                chunk = valid[start : start + 500]
                yield "".join(json.dumps(person, ensure_ascii=False) + "\n" for _n, person in chunk).encode()
                bar.update(len(chunk))
            yield "".join(json.dumps({"external_id": key}, ensure_ascii=False) + "\n" for key in held).encode()

        params = {"mode": self.mode, "dry_run": str(self.dry_run).lower()}
        headers = {"Content-Type": "application/x-ndjson", "Accept-Language": self.lang}
        try:
            response = self.client.post("/v1/talent/sync", params=params, content=body(), headers=headers)
        except httpx.TransportError as exc:
            raise ImportFailed(f"the service is unreachable or the stream broke off ({exc}); run again") from exc
        if response.status_code != 200:
            raise ImportFailed(sheets.problem_text(response))
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
    lang_of = "the rejected-rows report and of the service's answers"
    add_client_arguments(parser, "talent", default_url="http://127.0.0.1:8003", lang_of=lang_of)


PROMPTS: dict[str, str] = {
    "groups": "从下拉列表选择，或填写类别名称或代码，多个用顿号或逗号分隔：" + "、".join(GROUPS.choices()),
    "country": "从下拉列表选择，或填写 ISO 两位代码、中文或英文国名。",
    "province": "常住中国时填写：从下拉列表选择，或填写省份名称（广西）或代码（450000）。",
    "reserve": "是/否（true/false）。",
    "deleted": "填“是”则从人才库删除此人（只需编号）。",
    "gender": "女/男（F/M）。",
    "organization_country": "从下拉列表选择，或填写 ISO 两位代码、中文或英文国名。",
    "role": "从下拉列表选择，或填写职务名称或代码：" + "、".join(ROLES.choices()),
    "start_date": "日期单元格，或写成 2023-10-01、2023/10/1、2023.10.1、2023年10月1日。",
    "end_date": "仍在任时留空；格式同任职开始。",
}
# The examples as people type them: labels, names, slashes.
EXAMPLE_PERSON = ["CMES-000123", "王芳", "Wang Fang", "女", 1978, "女科学家、工程师", "中国", "北京",
                  "清华大学 Tsinghua University", "wang.fang@example.org", "0000-0002-1825-0097", "机械工程",
                  "是", "否"]  # fmt: skip
EXAMPLE_POST = ["CMES-000123", "World Federation of Engineering Organizations", "法国", "执委", "2023/10/1", ""]


def write_template(directory: Path) -> None:
    """talent_template.xlsx: a people sheet and a posts sheet, bilingual headers, an example row each typed
    as people type, dropdowns (groups, roles, countries, provinces, 是/否) from a hidden lists sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    directory.mkdir(parents=True, exist_ok=True)
    workbook = Workbook()
    people = workbook.active
    assert people is not None
    people.title = "people 人员"
    posts = workbook.create_sheet("posts 任职")
    for sheet, columns, example in ((people, PEOPLE, EXAMPLE_PERSON), (posts, POSTS, EXAMPLE_POST)):
        sheet.append(list(columns.headers))
        sheet.append(example)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for index, header in enumerate(columns.headers, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = max(14, len(header) + 4)
        sheet.freeze_panes = "A2"
    yes_no = ["是", "否"]
    people_lists = {
        "gender": ["女", "男"],
        "groups": GROUPS.choices(),
        "country": sheets.country_choices(),
        "province": sheets.province_choices(),
        "reserve": yes_no,
        "deleted": yes_no,
    }
    sheets.add_dropdowns(workbook, people, PEOPLE, people_lists, PROMPTS)
    posts_lists = {"organization_country": sheets.country_choices(), "role": ROLES.choices()}
    sheets.add_dropdowns(workbook, posts, POSTS, posts_lists, PROMPTS)
    workbook.properties.creator = "exchange-tracker"
    # A fixed timestamp keeps the checked-in file byte-stable when regenerated.
    workbook.properties.created = workbook.properties.modified = datetime(2026, 1, 1)
    workbook.save(directory / "talent_template.xlsx")
