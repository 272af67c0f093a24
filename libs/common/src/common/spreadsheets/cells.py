"""Spreadsheet cells as people type them, for every service's uploader or importer.

Plain cells: `text` (a code typed as a number, 440000.0, reads `440000`), `integer`, `items` (a list
separated by commas, 、 or spaces).

Dates as `2026-05-06`, `2026/5/6`, `2026.5.6`, `2026年5月6日` or an Excel date cell; `是`/`否`, `true`/`false`;
countries by ISO code or by Chinese or English name; provinces by GB/T 2260 code or name (`广西` → `450000`);
a producer's vocabulary (event types, talent groups and roles) by code or label. A cell that cannot be read,
or could mean two things, raises `CellError` naming what was understood, in either language
(`CellError.say(lang)`, texts in common.i18n's catalogue).

The lists for the templates' dropdowns come from here too (`country_choices`, `province_choices`,
`Vocabulary.choices`): each choice is a label and its code, which these readers accept back.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import babel
import pycountry

from common.i18n import Lang, say
from common.regions import PROVINCES, country_codes

_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 in Excel's (Lotus-compatible) reckoning
_EXCEL_SERIALS = (20_000, 80_000)  # 1954 … 2119: a number in a date column in this range is a date cell
_YEAR_FIRST = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_YEAR_LAST = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})$")
_TIME = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_TRUE = frozenset({"是", "true", "yes", "y", "1", "√", "✓", "x", "对"})
_FALSE = frozenset({"否", "false", "no", "n", "0", "×", "✗", "不是", "非", ""})
_ITEMS = re.compile(r"[,;，；、\s]+")
_LIST_SEPARATORS = re.compile(r"[,;，；、\n]+")  # not spaces: `Viet Nam`, `Young scientists` are one item
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区", "省", "市")


class CellError(ValueError):
    """A cell that cannot be read: the catalogue key of the reason and the values it names (`what`: a
    vocabulary section, said in the reader's language too)."""

    def __init__(self, key: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.params = dict(params or {})

    def say(self, lang: Lang) -> str:
        params = dict(self.params)
        if "what" in params:
            params["what"] = say(f"sheet.what.{params['what']}", lang)
        return say(self.key, lang, **params)

    def __str__(self) -> str:
        return self.say("en")


def text(value: object) -> str:
    """A cell as text, as typed: a whole number Excel keeps as 440000.0 reads `440000`, a date cell its
    ISO date."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def integer(value: object) -> object:
    """A whole number from a number or digits cell; anything else as it is, for the model to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def items(value: object) -> list[str]:
    """A free list: `energy, materials`, `能源、材料`, `energy materials`."""
    return [part for part in _ITEMS.split(text(value)) if part]


def read_list(value: object, read: Callable[[str], str]) -> list[str]:
    """A list of codes read one by one (`德国、France，vn`, `工程师, 女科学家`); an item that cannot be read
    whole is read word by word (`DE FR`, `engineer youth`), a dropdown choice (`德国 DE`) is one item."""
    found: list[str] = []
    for part in _LIST_SEPARATORS.split(text(value)):
        if not part.strip():
            continue
        try:
            found.append(read(part))
        except CellError:
            words = part.split()
            if len(words) < 2:
                raise
            found += [read(word) for word in words]
    return found


def _text(value: object) -> str:
    """The text a reader matches: full-width digits and letters as ASCII."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFKC", str(value)).strip()


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def read_date(value: object) -> date:
    """A date cell: an Excel date (or its serial number) or one of the typed forms above."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if _EXCEL_SERIALS[0] <= value < _EXCEL_SERIALS[1] and float(value).is_integer():
            return _EXCEL_EPOCH + timedelta(days=int(value))
        raise CellError("sheet.bad_date", {"value": value})
    text = _TIME.sub("", _text(value))  # "2026-05-06 00:00:00", as a date cell exported to CSV reads
    if match := _YEAR_FIRST.match(text):
        return _date(value, int(match[1]), int(match[2]), int(match[3]))
    if match := _YEAR_LAST.match(text):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        if first <= 12 and second <= 12 and first != second:
            day_first, month_first = _date(value, year, second, first), _date(value, year, first, second)
            raise CellError(
                "sheet.ambiguous_date",
                {"value": value, "first": month_first.isoformat(), "second": day_first.isoformat()},
            )
        return _date(value, year, second, first) if first > 12 else _date(value, year, first, second)
    raise CellError("sheet.bad_date", {"value": value})


def _date(value: object, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise CellError("sheet.bad_date", {"value": value}) from None


def read_bool(value: object) -> bool:
    """`是`/`否`, `true`/`false`, `yes`/`no`, 1/0, √/×, an empty cell for no (an Excel TRUE cell is
    already a bool)."""
    if isinstance(value, bool):
        return value
    text = _key(_text(value))
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CellError("sheet.bad_boolean", {"value": value})


def _resolve(value: object, index: Mapping[str, frozenset[str]], unknown: str, ambiguous: str, name: Any) -> str:
    """The one code a cell names, by its whole text or, for a dropdown choice (`广东省 440000`), by every
    word of it agreeing."""
    text = _text(value)
    found = index.get(_key(text))
    if found is None:
        words = [index.get(_key(word)) for word in text.split()]
        if len(words) > 1 and all(words):
            found = frozenset.intersection(*(w for w in words if w))
    if not found:
        raise CellError(unknown, {"value": value})
    if len(found) > 1:
        candidates = "、".join(f"{name(code)} ({code})" for code in sorted(found))
        raise CellError(ambiguous, {"value": value, "candidates": candidates})
    return next(iter(found))


def _index(pairs: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for name, code in pairs:
        if name.strip():
            found.setdefault(_key(name), set()).add(code)
    return {k: frozenset(v) for k, v in found.items()}


def _without_brackets(name: str) -> str:
    return re.sub(r"\s*[（(].*?[)）]\s*", "", name).strip()


@functools.cache
def _countries() -> tuple[dict[str, frozenset[str]], dict[str, tuple[str, str]]]:
    zh, en = babel.Locale("zh").territories, babel.Locale("en").territories
    pairs: list[tuple[str, str]] = []
    names: dict[str, tuple[str, str]] = {}
    for code in sorted(country_codes()):
        found = pycountry.countries.get(alpha_2=code)
        english = [en.get(code, ""), *(getattr(found, a, "") or "" for a in ("name", "official_name", "common_name"))]
        chinese = [zh.get(code, "")]
        chinese.append(_without_brackets(chinese[0]))  # 刚果（金） is also typed 刚果: then ambiguous
        if found is not None:
            english.append(found.alpha_3)
        pairs += [(code, code), *((n, code) for n in (*english, *chinese))]
        names[code] = (zh.get(code) or en.get(code) or code, en.get(code) or code)
    return _index(pairs), names


def read_country(value: object) -> str:
    """An ISO 3166-1 alpha-2 code from the code (either case), the alpha-3 code, or the Chinese or English
    name (`德国`, `Germany`, `Federal Republic of Germany`)."""
    index, names = _countries()
    return _resolve(value, index, "sheet.unknown_country", "sheet.ambiguous_country", lambda c: names[c][0])


def read_countries(value: object) -> list[str]:
    """Several countries by code or name (`德国、France，vn`, `DE FR`)."""
    return read_list(value, read_country)


def country_choices() -> list[str]:
    """Dropdown entries, `德国 DE`, ordered by code."""
    names = _countries()[1]
    return [f"{names[code][0]} {code}" for code in sorted(names)]


def _short_province(name_zh: str) -> str:
    for suffix in _PROVINCE_SUFFIXES:
        if name_zh.endswith(suffix) and len(name_zh) > len(suffix) + 1:
            return name_zh.removesuffix(suffix)
    return name_zh


@functools.cache
def _provinces() -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    pairs: list[tuple[str, str]] = []
    for p in PROVINCES:
        english = [p.name_en, _without_brackets(p.name_en), *re.findall(r"[（(](.*?)[)）]", p.name_en)]
        pairs += [(p.code, p.code), (p.name_zh, p.code), (_short_province(p.name_zh), p.code)]
        pairs += [(n, p.code) for n in english]
    return _index(pairs), {p.code: p.name_zh for p in PROVINCES}


def read_province(value: object) -> str:
    """A GB/T 2260 provincial code from the code (`450000`, or 450000.0 as Excel keeps a number) or the
    name in full or short, Chinese or English (`广西壮族自治区`, `广西`, `Guangxi`)."""
    index, names = _provinces()
    return _resolve(value, index, "sheet.unknown_province", "sheet.ambiguous_province", names.__getitem__)


def province_choices() -> list[str]:
    """Dropdown entries, `广东省 440000`, ordered by code."""
    return [f"{p.name_zh} {p.code}" for p in PROVINCES]


@dataclass(frozen=True)
class Vocabulary:
    """One section of a producer's vocabulary file (`{"conference": {"zh": "会议", "en": "Conference"}}`):
    a cell may hold the code, either label, or one of the producer's `aliases` (`国际会议`)."""

    what: str  # the catalogue key naming the section in messages: sheet.what.<what>
    labels: Mapping[str, Mapping[str, str]]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def _index(self) -> dict[str, frozenset[str]]:
        pairs = [(code, code) for code in self.labels]
        pairs += [(label, code) for code, by_lang in self.labels.items() for label in by_lang.values()]
        pairs += [(alias, code) for alias, code in self.aliases.items() if code in self.labels]
        return _index(pairs)

    def read(self, value: object) -> str:
        try:
            return _resolve(value, self._index, "sheet.unknown_label", "sheet.ambiguous_label", self.label)
        except CellError as exc:
            if exc.key == "sheet.unknown_label":  # name the choices
                exc.params |= {"what": self.what, "choices": "、".join(self.choices())}
            raise

    def label(self, code: str, lang: Lang = "zh") -> str:
        return self.labels[code][lang]

    def choices(self) -> list[str]:
        """Dropdown entries, `会议 conference`, in the vocabulary's order."""
        return [f"{self.label(code)} {code}" for code in self.labels]
