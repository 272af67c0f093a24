"""The batch's fast road (`decode_plain_batch`) against the models: it never accepts what they reject
and never gives another value; and the usual batches do take it."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from common.regions import country_codes
from events.api.schemas import BatchRequest
from events.domain.plain_batch import decode_plain_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "bench" / "events"))
from loadgen import event_body  # the benchmark's item: the fast road must take it

FULL = {
    "external_ref": "GD-2025-0042",
    "title": "中德氢能论坛 China–Germany Forum",
    "type": "forum",
    "start_date": "2025-05-10",
    "end_date": "2025-05-12",
    "host_country": "CN",
    "host_province": "440000",
    "city": "广州",
    "participants": 320,
    "foreign_participants": 85,
    "papers": 64,
    "countries": ["FR", "DE", "FR"],
    "partner_org_ids": ["0b9f6f1e-4d0f-4c59-9a55-7f1b8b0b6f10", "0b9f6f1e-4d0f-4c59-9a55-7f1b8b0b6f10"],
    "fields": ["energy", "energy", "hydrogen"],
    "target_groups": ["young_scientist"],
    "flagship": True,
    "organizer": {"kind": "province", "code": "440000"},
}
MINIMAL = {"external_ref": "x", "title": "t", "type": "online", "start_date": "2025-01-01", "end_date": "2025-01-01"}


def by_the_models(raw: bytes) -> list[dict[str, Any]] | None:
    try:
        return [event.json_ready() for event in BatchRequest.model_validate_json(raw).events]
    except ValidationError:
        return None


def body(*items: Any, **extra: Any) -> bytes:
    return json.dumps({"events": list(items), **extra}, ensure_ascii=False).encode()


def assert_agrees(raw: bytes) -> list[dict[str, Any]] | None:
    fast, models = decode_plain_batch(raw), by_the_models(raw)
    if fast is not None:
        assert models is not None, "the fast road accepted what the models reject"
        assert fast == models
        assert [list(item) for item in fast] == [list(item) for item in models]  # the same key order
    return fast


@pytest.mark.parametrize("items", [[event_body(n, "run") for n in range(50)], [FULL], [MINIMAL], [FULL, MINIMAL]])
def test_usual_batches_take_the_fast_road_to_the_same_dicts(items):
    assert assert_agrees(body(*items)) is not None


def test_an_empty_batch_is_plain_too():
    assert assert_agrees(body()) == []


EDGES: list[dict[str, Any]] = [
    # Values the models coerce, strip or change case of: the fast road leaves those to them.
    {"title": " Forum"},
    {"title": "Forum\u3000"},
    {"title": "\u00a0Forum"},
    {"title": "Forum\u2009"},
    {"title": "Forum\u0085"},
    {"external_ref": "GD-1 "},
    {"city": " 广州"},
    {"city": ""},
    {"city": None},
    {"countries": ["de"]},
    {"countries": ["De", "FR"]},
    {"host_country": "de", "host_province": None},
    {"participants": 320.0},
    {"participants": "320"},
    {"participants": True},
    {"flagship": 1},
    {"flagship": "true"},
    {"start_date": "2025-05-10T00:00:00"},
    {"start_date": 1746835200},
    {"partner_org_ids": ["0B9F6F1E-4D0F-4C59-9A55-7F1B8B0B6F10"]},
    {"partner_org_ids": ["0b9f6f1e4d0f4c599a557f1b8b0b6f10"]},
    {"partner_org_ids": ["{0b9f6f1e-4d0f-4c59-9a55-7f1b8b0b6f10}"]},
    {"fields": [" energy", "energy", " "]},
    {"fields": ["   "]},
    {"organizer": None},
    {"organizer": {"kind": "hq", "code": "HQ"}},
    {"organizer": {"kind": "society", "code": "CMES"}},
    # Values both must refuse.
    {"title": ""},
    {"title": "   "},
    {"title": "x" * 500},
    {"title": "x" * 501},
    {"title": "Forum\x00"},
    {"title": "Forum\x1f"},
    {"title": "Line\nbreak\ttab\rreturn"},
    {"external_ref": "x" * 200},
    {"external_ref": "x" * 201},
    {"city": "x" * 201},
    {"city": "City\x07"},
    {"type": "Forum"},
    {"type": "party"},
    {"start_date": "1948-12-31"},
    {"start_date": "1949-01-01"},
    {"end_date": "2100-12-31"},
    {"end_date": "2101-01-01"},
    {"end_date": "2025-05-09"},
    {"start_date": "2025-5-10"},
    {"participants": -1},
    {"participants": 100_000_000},
    {"participants": 100_000_001, "foreign_participants": 0},
    {"participants": 10, "foreign_participants": 11},
    {"papers": None},
    {"countries": ["CN"]},
    {"countries": ["QQ"]},
    {"countries": ["DE"] * 501},
    {"countries": None},
    {"host_country": "XY"},
    {"host_country": "DE"},
    {"host_country": "DE", "host_province": None},
    {"host_country": "DE", "host_province": None, "type": "online"},
    {"host_province": None},
    {"host_province": None, "type": "online"},
    {"host_province": ""},
    {"host_province": "440100"},
    {"host_province": "660000"},
    {"host_province": " 440000"},
    {"partner_org_ids": ["not-a-uuid"]},
    {"fields": [""]},
    {"fields": ["x" * 101]},
    {"fields": ["tag\x01"]},
    {"fields": ["f"] * 101},
    {"target_groups": [1]},
    {"organizer": {"kind": "province", "code": "440000\n"}},
    {"organizer": {"kind": "province", "code": "999999"}},
    {"organizer": {"kind": "society", "code": "C MES"}},
    {"organizer": {"kind": "society", "code": "x" * 33}},
    {"organizer": {"kind": "ministry", "code": "X"}},
    {"organizer": {"kind": "hq", "code": "HQ", "admin": True}},
    {"status": "active"},
]


@pytest.mark.parametrize("change", EDGES, ids=[json.dumps(c, ensure_ascii=True)[:60] for c in EDGES])
def test_edge_cases_agree_with_the_models(change):
    assert_agrees(body({**FULL, **change}))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b'{"events": null}',
        b'{"events": [], "more": 1}',
        b'{"events": [' + b",".join([json.dumps(MINIMAL).encode()] * 1001) + b"]}",
        b'{"events": [{"title": "\\ud800"}]}',
        b'{"events": [{"external_ref": "a", "external_ref": "b", "title": "t", "type": "online",'
        b' "start_date": "2025-01-01", "end_date": "2025-01-01"}]}',  # a repeated key: the last one, as the models
        b'{"events": [{"title": "x\xff"}]}',
        b'{"events": [1]}',
    ],
)
def test_odd_bodies_agree_with_the_models(raw):
    assert_agrees(raw)


def test_one_item_off_the_road_sends_the_whole_batch_to_the_models():
    assert decode_plain_batch(body(MINIMAL, {**MINIMAL, "title": " t"})) is None


# Generated items: a valid item with up to three of the changes above and of these plain ones, so
# both roads meet many combinations of plain and odd fields.
PLAIN = [
    {"countries": ["JP", "DE", "US"]},
    {"countries": []},
    {"fields": []},
    {"target_groups": ["woman_scientist", "young_scientist", "woman_scientist"]},
    {"type": "online", "host_province": None},
    {"host_country": "DE", "host_province": None},
    {"city": "München"},
    {"partner_org_ids": []},
    {"flagship": False},
    {"organizer": {"kind": "province", "code": "110000"}},
]
_items = st.builds(
    lambda base, changes: {k: v for change in [base, *changes] for k, v in change.items()},
    st.sampled_from([FULL, MINIMAL]),
    st.lists(st.sampled_from(EDGES + PLAIN * 4), max_size=3),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items, max_size=3))
def test_generated_batches_agree_with_the_models(items):
    assert_agrees(body(*items))


# Generated text and numbers around a valid item: any Unicode in the text fields (spaces of every
# kind, control characters, astral planes), countries in any case, counts and dates near the bounds.
_CODES = sorted(country_codes())
_plain_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]), min_size=1)
_odd_text = st.text(max_size=6) | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8)
_texts = _plain_text | _plain_text.map(lambda t: f"{t} {t}") | _odd_text
_dates = st.dates(date(1948, 12, 29), date(2101, 1, 3))
_varied = st.builds(
    lambda base, change: {**base, **change},
    st.sampled_from([FULL, MINIMAL]),
    st.fixed_dictionaries(
        {},
        optional={
            "title": _texts | _texts.map(lambda t: f"Forum{t}") | _texts.map(lambda t: f"{t}论坛"),
            "external_ref": _texts,
            "city": st.none() | _texts,
            "countries": st.lists(st.sampled_from(_CODES) | st.sampled_from(_CODES).map(str.lower), max_size=4),
            "fields": st.lists(_texts, max_size=3),
            "participants": st.integers(0, 1000) | st.integers(-2, 100_000_001),
            "foreign_participants": st.integers(0, 100),
            "start_date": _dates.map(date.isoformat),
            "end_date": _dates.map(date.isoformat),
            "host_province": st.none() | st.sampled_from(["440000", "110000", "660000", "440100", ""]),
        },
    ),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_varied, min_size=1, max_size=2))
def test_generated_text_and_numbers_agree_with_the_models(items):
    assert_agrees(body(*items))
