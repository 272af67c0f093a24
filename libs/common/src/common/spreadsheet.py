"""Reading the services' spreadsheet templates: bilingual headers ("外部编号 external_id", either half
is enough), cells turned into JSON values, and a service's problem answer told in one line. Shared by the
command-line importers (`talent import`)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

SPLIT = re.compile(r"[,;，；、\s]+")
TRUE = frozenset({"1", "true", "yes", "y", "是", "√", "x"})
FALSE = frozenset({"0", "false", "no", "n", "否", ""})


class SheetError(ValueError):
    """The file cannot be read as the expected sheet (wrong headers, unknown format, missing sheet)."""


class Columns:
    """A sheet's columns: (Chinese label, field) pairs; headers read "<Chinese> <field>"."""

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = tuple(columns)
        self.headers = tuple(f"{zh} {en}" for zh, en in columns)
        self._by_label = {zh: en for zh, en in columns} | {en: en for _zh, en in columns}

    def field_of(self, header: object) -> str | None:
        text = str(header or "").strip()
        if not text:
            return None
        if text in self._by_label:
            return self._by_label[text]
        for part in reversed(text.split()):
            if part in self._by_label:
                return self._by_label[part]
        raise SheetError(f"unknown column {text!r}; use the template's headers")

    def rows(self, rows: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number as the user sees it, {field: raw cell}) for every non-empty row under the header."""
        iterator = iter(rows)
        try:
            header = next(iterator)
        except StopIteration:
            return
        fields = [self.field_of(h) for h in header]
        for number, row in enumerate(iterator, start=2):
            values = {f: v for f, v in zip(fields, row, strict=False) if f is not None and not blank(v)}
            if values:
                yield number, values


def read_sheet(path: Path, columns: Columns, sheet: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a .csv file, or of a workbook's sheet whose name contains `sheet` (else its first)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from columns.rows(csv.reader(handle))
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            found = (
                workbook.worksheets[0]
                if sheet is None
                else next((s for s in workbook.worksheets if sheet in s.title), None)
            )
            if found is None:
                raise SheetError(f"{path.name}: no sheet named like {sheet!r}")
            yield from columns.rows(found.iter_rows(values_only=True))
        finally:
            workbook.close()
    else:
        raise SheetError(f"{path.name}: expected a .xlsx or .csv file")


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code typed as a number: 440000.0
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def boolean(value: Any) -> Any:
    lowered = str(value).strip().lower()
    return True if lowered in TRUE else False if lowered in FALSE else value


def items(value: Any) -> list[str]:
    return [part for part in SPLIT.split(text(value)) if part]


def problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
        return f"{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}"
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
