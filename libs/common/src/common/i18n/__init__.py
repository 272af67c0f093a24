"""Answers in the caller's language: English (the default) or Chinese, from one message catalogue.

``messages.json`` holds every text a client or a spreadsheet user reads, each in both languages:

* ``keys``: texts named by a key (problem titles ``title.<status>``, the spreadsheet readers' ``sheet.*``);
* ``pydantic``: pydantic's validation messages by error ``type``, its English template and ours in Chinese,
  with the same ``{ctx}`` placeholders (``string_too_long``: ``{max_length}``);
* ``texts``: the English texts the services raise (``There is no event {event_id}.``) with their Chinese.
  A service raises its English text as before; the answer is translated by matching it against these
  templates, only when an error is answered to a caller who asked for Chinese. The services' code and
  their hot paths stay as they are, and a text missing here is caught by
  ``libs/common/tests/test_i18n.py``, which finds every text the services raise.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
DEFAULT: Lang = "en"

ACCEPT_LANGUAGE_DOC = (
    "`zh` (or `zh-CN`, `zh-Hans`, with q-values as usual) answers errors in Chinese: problem+json `title`, "
    "`detail` and every `errors[].msg`; anything else, or none, in English."
)


def negotiate(header: str | None) -> Lang:
    """The language of the answer from an ``Accept-Language`` header: Chinese when a ``zh`` range is
    preferred (highest q, earlier wins a tie) over English and ``*``; English otherwise."""
    if not header or "zh" not in header.lower():  # the common case answered without parsing
        return DEFAULT
    best: tuple[float, Lang] | None = None
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("zh", "en", "*"):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        lang: Lang = "zh" if primary == "zh" else DEFAULT
        if best is None or quality > best[0]:
            best = (quality, lang)
    return best[1] if best else DEFAULT


@dataclass(frozen=True, slots=True)
class _Template:
    en: str
    zh: str
    pattern: re.Pattern[str]
    literal: int  # characters outside placeholders: the more, the more specific


def placeholders(template: str) -> list[str]:
    return [name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None]


def _compile(en: str, zh: str) -> _Template:
    regex, literal = "", 0
    for text, name, _spec, _conv in string.Formatter().parse(en):
        regex += re.escape(text)
        literal += len(text)
        if name is not None:
            regex += f"(?P<{name}>.*?)" if name == "expected_plural" else f"(?P<{name}>.+?)"
    return _Template(en, zh, re.compile(regex, re.DOTALL), literal)


@dataclass(frozen=True, slots=True)
class Catalogue:
    keys: Mapping[str, Mapping[str, str]]
    pydantic: Mapping[str, Mapping[str, str]]
    texts: tuple[Mapping[str, str], ...]
    exact: Mapping[str, str]
    templates: tuple[_Template, ...]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Catalogue:
        texts = tuple(raw["texts"])
        pydantic = raw["pydantic"]
        entries = [*texts, *pydantic.values()]
        exact = {e["en"]: e["zh"] for e in entries if not placeholders(e["en"])}
        templates = sorted(
            (_compile(e["en"], e["zh"]) for e in entries if placeholders(e["en"])), key=lambda t: -t.literal
        )
        return cls(raw["keys"], pydantic, texts, exact, tuple(templates))

    def entries(self) -> Iterable[tuple[str, Mapping[str, str]]]:
        """Every entry with where it is (for the completeness test)."""
        yield from ((f"keys.{k}", v) for k, v in self.keys.items())
        yield from ((f"pydantic.{k}", v) for k, v in self.pydantic.items())
        yield from ((f"texts[{i}]", v) for i, v in enumerate(self.texts))


@functools.cache
def catalogue() -> Catalogue:
    text = resources.files(__package__ or "common.i18n").joinpath("messages.json").read_text("utf-8")
    return Catalogue.from_json(json.loads(text))


def say(key: str, lang: Lang = DEFAULT, /, **params: Any) -> str:
    """The text named ``key`` in ``lang``, its ``{placeholders}`` filled in."""
    return catalogue().keys[key][lang].format(**params)


def title(status: int, lang: Lang = DEFAULT) -> str:
    entry = catalogue().keys.get(f"title.{status}") or catalogue().keys["title.error"]
    return entry[lang]


def translate(text: str, lang: Lang, _depth: int = 0) -> str:
    """An English text the services raise, in ``lang``: as the catalogue has it, with the values it
    carries (ids, field names, limits) kept and, where they are catalogued texts themselves, translated
    too. A text the catalogue lacks stays English."""
    if lang == "en" or not text:
        return text
    found = catalogue()
    if (exact := found.exact.get(text)) is not None:
        return exact
    for template in found.templates:
        if match := template.pattern.fullmatch(text):
            values = match.groupdict()
            if _depth < 3:
                values = {k: translate(v, lang, _depth + 1) for k, v in values.items()}
            return template.zh.format(**values)
    return text


def translate_error(error: Mapping[str, Any], lang: Lang) -> str:
    """An error's ``msg`` in ``lang``: by pydantic's error ``type`` and its ``ctx`` values when the message
    is pydantic's own, else by the text (messages the services' validators or ``explain`` wrote)."""
    msg = str(error.get("msg", ""))
    if lang == "en":
        return msg
    kind, ctx = error.get("type"), error.get("ctx") or {}
    entry = catalogue().pydantic.get(kind) if isinstance(kind, str) else None
    if entry is not None and kind not in ("value_error", "assertion_error"):
        values = {name: _ctx_value(ctx, name) for name in placeholders(entry["en"])}
        try:
            if entry["en"].format(**values) == msg:
                return entry[lang].format(**values)
        except (KeyError, IndexError, ValueError):
            pass
    return translate(msg, lang)


def _ctx_value(ctx: Mapping[str, Any], name: str) -> Any:
    if name == "expected_plural":  # pydantic derives it from the limit
        limit = next((ctx[k] for k in ("min_length", "max_length", "max_digits", "decimal_places") if k in ctx), 1)
        return "" if limit == 1 else "s"
    return ctx[name]


def localize_errors(errors: Iterable[Mapping[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """`{loc, msg}` errors with ``msg`` in ``lang``; a ``type``/``ctx`` they carry is used, never sent."""
    return [
        {**{k: v for k, v in e.items() if k not in ("type", "ctx", "msg")}, "msg": translate_error(e, lang)}
        for e in errors
    ]
