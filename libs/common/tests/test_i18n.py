"""The message catalogue: every text in both languages, every text a service raises catalogued, pydantic's
messages by type, and `Accept-Language` read as people send it."""

from __future__ import annotations

from pathlib import Path

import pytest
from common.i18n import catalogue, negotiate, placeholders, say, translate, translate_error
from common.i18n.raised import raised_in
from pydantic import BaseModel, Field, ValidationError
from pydantic_core._pydantic_core import list_all_errors

ROOT = Path(__file__).resolve().parents[3]
# Texts only operators read (start-up checks of the settings, data files, the rebuild command).
OPERATOR_ONLY = {"settings.py", "catalogue.py", "rebuild.py", "documents.py"}


def caller_facing_sources() -> list[Path]:
    found = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/common/src/common/**/*.py")]
    return sorted(
        p
        for p in found
        if "entrypoints" not in p.parts
        and "testing" not in p.parts
        and "i18n" not in p.parts
        and p.name not in OPERATOR_ONLY
    )


def test_every_message_has_both_languages_with_the_same_values():
    for where, entry in catalogue().entries():
        assert entry.get("en", "").strip() and entry.get("zh", "").strip(), f"{where} lacks a language: {entry}"
        en = set(placeholders(entry["en"])) - {"expected_plural"}
        assert set(placeholders(entry["zh"])) == en, f"{where}: the languages carry different values"


def test_a_message_lacking_a_language_is_found():
    broken = {"keys": {"title.404": {"en": "Not found"}}, "pydantic": {}, "texts": []}
    from common.i18n import Catalogue

    entries = list(Catalogue.from_json(broken).entries())
    assert entries == [("keys.title.404", {"en": "Not found"})]
    assert not entries[0][1].get("zh")  # what the test above refuses


def test_every_text_a_service_raises_is_in_the_catalogue():
    sources = caller_facing_sources()
    assert any("events" in p.parts for p in sources) and any("partners" in p.parts for p in sources)
    missing = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path, line, text in raised_in(sources)
        if translate(text, "zh") == text
    ]
    assert not missing, "add these to libs/common/src/common/i18n/messages.json (texts):\n" + "\n".join(missing)


def test_the_pydantic_section_is_pydantics_own_wording():
    templates = {e["type"]: e["message_template_python"] for e in list_all_errors()}
    for kind, entry in catalogue().pydantic.items():
        assert templates.get(kind) == entry["en"], f"pydantic.{kind}: pydantic says {templates.get(kind)!r}"


class Sample(BaseModel):
    title: str = Field(max_length=5)
    count: int = Field(ge=0, le=10)
    kind: str = Field(pattern=r"^[a-z]+$")


def test_pydantic_errors_are_translated_by_type_with_their_limits():
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"title": "x" * 9, "count": 11})
    said = {e["loc"][0]: translate_error(e, "zh") for e in caught.value.errors()}
    assert said == {"title": "最多 5 个字符", "count": "应小于或等于 10", "kind": "必填字段"}
    # the same messages without their type (a batch item's errors): matched by pydantic's wording
    assert translate("String should have at most 500 characters", "zh") == "最多 500 个字符"
    assert translate_error({"msg": "Field required"}, "en") == "Field required"


def test_values_inside_a_text_are_kept_and_catalogued_ones_translated():
    assert translate("There is no event 0193a5b2.", "zh") == "不存在活动 0193a5b2。"
    assert translate("Value error, must be on or after start_date", "zh") == "不得早于开始日期（start_date）"
    assert translate("something no one catalogued", "zh") == "something no one catalogued"
    assert say("title.404", "zh") == "未找到"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh-Hans-CN,zh;q=0.9", "zh"),
        ("ZH-cn", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN;q=0.5,en;q=0.9", "en"),
        ("fr,zh;q=0.4", "zh"),
        ("zh;q=0", "en"),
        ("zh;q=abc", "en"),
        ("*,zh;q=0.2", "en"),
        ("de-DE", "en"),
        ("\x00zh\x7f;;;q==", "en"),
    ],
)
def test_accept_language(header, lang):
    assert negotiate(header) == lang
