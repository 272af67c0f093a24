"""Reading the services' spreadsheets: a .csv file or a workbook's sheet, by its bilingual headers
("外部编号 external_id": either half is enough), row by row as the user numbers them."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class SheetError(ValueError):
    """The file cannot be read as the expected sheet (wrong headers, unknown format, missing sheet)."""


class Columns:
    """A sheet's columns: (Chinese label, field) pairs; headers read "<Chinese> <field>"."""

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = tuple(columns)
        self.headers = tuple(f"{zh} {en}" for zh, en in columns)
        self.fields = tuple(en for _zh, en in columns)
        self.labels = {en: zh for zh, en in columns}
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
