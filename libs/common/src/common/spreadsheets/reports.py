"""What an uploader tells its user: the rejected-rows CSV in the user's language (`--lang`, by default the
system's locale), each row's problems as `column: message; …`, and a service's problem answer in one line."""

from __future__ import annotations

import csv
import locale
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

import httpx

from common.i18n import Lang, say, translate_error

REPORT_ENCODING = "utf-8-sig"  # with a BOM: Excel then opens the Chinese in it cleanly


def system_language() -> Lang:
    """Chinese when the system's locale is (LC_ALL, LC_MESSAGES, LANG, as gettext reads them)."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if value := os.environ.get(variable):
            return "zh" if value.lower().startswith("zh") else "en"
    found = locale.getlocale()[0] or ""
    return "zh" if found.lower().startswith("zh") else "en"


def describe(
    errors: Sequence[Mapping[str, Any]], lang: Lang, *, labels: Mapping[str, str] | None = None, batch: str = ""
) -> str:
    """`column: message; …`, each message in `lang` (a service asked in `lang` already answers in it), the
    columns by their Chinese `labels` in Chinese; a location inside a request's `batch` list loses the
    list's name and index (the report has the row instead)."""
    parts = []
    names = (labels or {}) if lang == "zh" else {}
    for error in errors:
        loc = [str(p) for p in error.get("loc", [])]
        if batch and len(loc) >= 2 and loc[0] == batch:
            loc = loc[2:]
        where = ".".join(names.get(p, p) for p in loc) or say("sheet.whole_row", lang)
        parts.append(f"{where}: {translate_error(error, lang)}")
    return "; ".join(parts)


class RejectedRows:
    """The rejected-rows CSV: its header row (`sheet.column.<column>` in `lang`), then a row per rejection."""

    def __init__(self, handle: IO[str], columns: Sequence[str], lang: Lang) -> None:
        self.handle = handle
        self.lang = lang
        self.writer = csv.writer(handle)
        self.writer.writerow([say(f"sheet.column.{c}", lang) for c in columns])

    def say(self, key: str, **params: Any) -> str:
        return say(key, self.lang, **params)

    def write(self, values: Sequence[object]) -> None:
        self.writer.writerow(values)
        self.handle.flush()  # an interrupted run leaves the rows it had rejected


def problem_text(response: httpx.Response) -> str:
    """A service's problem+json answer in one line: `422 title: detail`."""
    try:
        problem = response.json()
        return f"{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}"
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
