"""The domain's validation rules, without a database or a web framework."""

from __future__ import annotations

import re
import types
import typing

import pytest
from common.regions import PROVINCES
from events.domain.model import (
    EVENT_TYPES,
    JSON_CONVERTED,
    EventContent,
    EventCreate,
    EventPatch,
    Organizer,
    can_act_for,
    explain,
)
from pydantic import ValidationError

VALID = {
    "external_ref": "GD-1",
    "title": "Forum",
    "type": "forum",
    "start_date": "2025-05-10",
    "end_date": "2025-05-12",
    "host_province": "440000",
}


def errors_of(data) -> dict[str, str]:
    """Messages by location, as the API answers them (`explain`ed)."""
    with pytest.raises(ValidationError) as caught:
        EventCreate.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in explain(caught.value.errors())}


def test_minimal_event_gets_the_defaults():
    event = EventCreate.model_validate(VALID)
    assert event.host_country == "CN" and event.participants == 0 and event.countries == [] and not event.flagship


def test_countries_are_normalised_so_equal_content_compares_equal():
    a = EventCreate.model_validate({**VALID, "countries": ["fr", "DE", "de"], "title": "  Forum "})
    b = EventCreate.model_validate({**VALID, "countries": ["DE", "FR"]})
    assert a.canonical_content() == b.canonical_content()
    assert a.countries == ["DE", "FR"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": "2025-05-09"}, "end_date"),
        ({"participants": 1, "foreign_participants": 2}, "foreign_participants"),
        ({"participants": -1}, "participants"),
        ({"countries": ["CN"]}, "countries"),
        ({"countries": ["QQ"]}, "countries"),
        ({"host_country": "XY"}, "host_country"),
        ({"host_province": None}, "host_province"),
        ({"host_province": "440100"}, "host_province"),
        ({"host_country": "DE"}, "host_province"),
        ({"title": " "}, "title"),
        ({"title": "t" * 501}, "title"),
        ({"start_date": "1948-12-31", "end_date": "1949-01-01"}, "start_date"),
        ({"end_date": "2101-01-01"}, "end_date"),
        ({"surprise": 1}, "surprise"),
        ({"type": "banquet"}, "type"),
    ],
)
def test_each_rule_names_its_field(change, field):
    assert field in {loc.split(".")[0] for loc in errors_of({**VALID, **change})}


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"title": "Forum\x00"}, "title", "Value error, must not contain control characters"),
        ({"external_ref": "a\x1fb"}, "external_ref", "Value error, must not contain control characters"),
        ({"city": "\x07"}, "city", "Value error, must not contain control characters"),
        ({"fields": ["ok", "x\x1e"]}, "fields.1", "Value error, must not contain control characters"),
        ({"countries": ["DE", "XX"]}, "countries.1", "Value error, 'XX' is not an ISO 3166-1 alpha-2 country code"),
        ({"countries": [" cn "]}, "countries.0", "Value error, lists partner countries: `CN` must not be in it"),
        # Unicode case folding must not turn the Kelvin sign into the K of Kenya.
        ({"countries": ["\u212ae"]}, "countries.0", "Value error, '\u212ae' is not an ISO 3166-1 alpha-2 country code"),
        (
            {"host_country": "zz", "host_province": None},
            "host_country",
            "Value error, 'zz' is not an ISO 3166-1 alpha-2 country code",
        ),
    ],
)
def test_pattern_checks_answer_in_words(change, loc, message):
    assert errors_of({**VALID, **change}) == {loc: message}


def test_text_is_stripped_and_blank_optional_text_is_none():
    event = EventCreate.model_validate(
        {**VALID, "external_ref": " GD-1\u3000", "title": "\tForum ", "city": "  ", "host_province": " 440000 "}
    )
    assert (event.external_ref, event.title, event.city, event.host_province) == ("GD-1", "Forum", None, "440000")
    event = EventCreate.model_validate(
        {**VALID, "fields": [" a", "a", "  ", "b "], "host_country": " de ", "host_province": ""}
    )
    assert (event.fields, event.host_country, event.host_province) == (["a", "b"], "DE", None)


@pytest.mark.parametrize(
    ("sent", "stored"), [(["a"], ["a"]), ([" a "], ["a"]), (["  "], []), (["\ta\n"], ["a"]), ([], [])]
)
def test_a_single_tag_is_stripped_and_a_blank_one_dropped(sent: list[str], stored: list[str]) -> None:
    event = EventCreate.model_validate({**VALID, "fields": sent, "target_groups": sent})
    assert (event.fields, event.target_groups) == (stored, stored)


def test_online_and_abroad_events_need_no_province():
    EventCreate.model_validate({**VALID, "type": "online", "host_province": None})
    EventCreate.model_validate({**VALID, "host_country": "DE", "host_province": None})


def test_kosovo_is_a_country_and_every_event_type_is_accepted():
    for event_type in EVENT_TYPES:
        EventCreate.model_validate({**VALID, "type": event_type, "countries": ["XK"]})


def test_every_provincial_code_is_accepted_as_host_and_organizer():
    assert len(PROVINCES) == 34
    for province in PROVINCES:
        EventCreate.model_validate({**VALID, "host_province": province.code})
        Organizer(kind="province", code=province.code)
    with pytest.raises(ValidationError):
        Organizer(kind="province", code="440300")


def test_patch_is_validated_as_a_whole_after_applying():
    content = EventContent.model_validate({k: v for k, v in VALID.items() if k != "external_ref"})
    assert EventPatch.model_validate({"papers": 3}).apply_to(content).papers == 3
    with pytest.raises(ValidationError) as caught:
        EventPatch.model_validate({"end_date": "2025-01-01"}).apply_to(content)
    assert caught.value.errors()[0]["loc"] == ("end_date",)
    with pytest.raises(ValidationError):
        EventPatch.model_validate({"title": None})
    assert EventPatch.model_validate({"city": None}).apply_to(content).city is None


def test_who_may_act_for_whom():
    gd = Organizer(kind="province", code="440000")
    assert can_act_for(org_kind="province", org_code="440000", is_admin=False, organizer=gd)
    assert not can_act_for(org_kind="province", org_code="110000", is_admin=False, organizer=gd)
    assert can_act_for(org_kind="hq", org_code="HQ", is_admin=True, organizer=gd)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"organizer": {"kind": "hq", "code": "HQ"}, "city": "Guangzhou", "countries": ["fr", "DE"], "flagship": True},
        {"partner_org_ids": ["0b9f6f1e-4d0f-4c59-9a55-7f1b8b0b6f10"], "fields": ["a", "b"], "participants": 3},
        {"type": "online", "host_province": None, "target_groups": ["youth"], "papers": 7},
    ],
)
def test_json_ready_is_model_dump_in_json_mode(extra) -> None:
    event = EventCreate.model_validate({**VALID, **extra})
    assert event.json_ready() == event.model_dump(mode="json")


def _json_native(annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin is typing.Annotated:
        return _json_native(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        return all(_json_native(a) for a in typing.get_args(annotation))
    return annotation in (str, int, bool, type(None))


def test_json_ready_converts_every_field_that_is_not_json_already() -> None:
    # A new field of another type must be converted in `json_ready` and named in JSON_CONVERTED.
    others = {name for name, field in EventCreate.model_fields.items() if not _json_native(field.annotation)}
    assert others == JSON_CONVERTED


@pytest.mark.parametrize("field", ["title", "external_ref"])
def test_the_openapi_pattern_of_a_required_text_refuses_what_stripping_leaves_empty(field: str) -> None:
    """Spaces alone pass `minLength: 1` but are refused once stripped: the published pattern says so."""
    pattern = re.compile(EventCreate.model_json_schema()["properties"][field]["pattern"])
    assert pattern.search("   ") is None and pattern.search("\u3000\n") is None
    assert pattern.search(" GD-2025-0042 ") is not None and pattern.search("中德氢能论坛") is not None
    assert pattern.search("a\x00b") is None
