"""The batch endpoint's fast road: a body whose every item is *plainly* valid, decoded by msgspec.

`events.domain.model` stays the one definition of a valid event. This module only recognises the
common case, a batch whose items need no coercion, no stripping and no case change, and gives for it
exactly what the models give (`[e.json_ready() for e in BatchRequest.model_validate_json(raw).events]`,
api/schemas.py) in about half the time: pydantic's validation and the model objects were a quarter of the API's CPU
per batch (bench/events/README.md). Anything it is not sure of (an error, a lower-case
country, a number sent as `1.0`, a space at the edge of a title, …) answers None, and the caller
validates with the models, which also write the error messages. So this module must never accept
what the models reject, nor give a different value: `tests/unit/test_plain_batch.py` holds the two
equal on a table of edge cases and on generated bodies.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from common.regions import country_codes, is_province_code

from events.domain.model import (
    EARLIEST,
    HOME_COUNTRY,
    LATEST,
    MAX_BATCH,
    MAX_COUNT,
    MAX_LIST,
    MAX_TITLE,
    unique_tags,
)

if TYPE_CHECKING:
    Country = str
    PartnerCountry = str
    EventType = str
else:  # upper case only: the models also accept lower case, and upper-case it (then: the models)
    from events.domain.model import EVENT_TYPES

    Country = Literal[tuple(sorted(country_codes()))]
    PartnerCountry = Literal[tuple(sorted(country_codes() - {HOME_COUNTRY}))]
    EventType = Literal[EVENT_TYPES]

# What the models' NO_CONTROL pattern refuses.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Python's whitespace and Rust's `char::is_whitespace` (pydantic-core strips with `str::trim`); the
# two differ only in U+001C–U+001F, which `_CONTROL` refuses anyway. A text with none at its edges
# is left as it is by the models' stripping.
_RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
_SPACE = frozenset(chr(c) for c in range(0x3001) if chr(c).isspace()) | frozenset(_RUST_WHITESPACE)
_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # fullmatch: `$` would let a trailing newline through
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # as str(UUID) writes it
_EARLIEST, _LATEST = EARLIEST.isoformat(), LATEST.isoformat()  # ISO dates of 4-digit years sort as text

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class _Organizer(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["province", "society", "hq"]
    code: str


class _Item(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The models' fields in their order, so the dicts match `json_ready()` key for key.
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE)]
    type: EventType
    start_date: date
    end_date: date
    host_country: Country = HOME_COUNTRY
    host_province: str | None = None
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    participants: Count = 0
    foreign_participants: Count = 0
    papers: Count = 0
    countries: Annotated[list[PartnerCountry], msgspec.Meta(max_length=MAX_LIST)] = msgspec.field(default_factory=list)
    partner_org_ids: Annotated[list[str], msgspec.Meta(max_length=MAX_LIST)] = msgspec.field(default_factory=list)
    fields: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    target_groups: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    flagship: bool = False
    external_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    organizer: _Organizer | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[_Item], msgspec.Meta(max_length=MAX_BATCH)]


_decoder = msgspec.json.Decoder(_Batch)


def decode_plain_batch(raw: bytes) -> list[dict[str, Any]] | None:
    """The JSON-ready items of a batch body whose every item is plainly valid, or None (then ask the
    models). Each dict is what `EventCreate.json_ready()` returns for the item, and the caller's."""
    try:
        items: list[dict[str, Any]] = msgspec.to_builtins(_decoder.decode(raw).events)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # the models then explain
        return None
    for item in items:
        if not _plain(item):
            return None
        _normalise(item)
    return items


def _plain(item: dict[str, Any]) -> bool:
    """The rules msgspec's types above do not check, as the models check them."""
    title, ref, city = item["title"], item["external_ref"], item["city"]
    fields, groups = item["fields"], item["target_groups"]
    texts = [title, ref, *fields, *groups] if city is None else [title, ref, city, *fields, *groups]
    if _CONTROL.search("\n".join(texts)):
        return False
    if not (_trimmed(title) and _trimmed(ref) and (city is None or _trimmed(city))):
        return False
    start, end = item["start_date"], item["end_date"]
    if not (_EARLIEST <= start <= end <= _LATEST):
        return False
    if item["foreign_participants"] > item["participants"]:
        return False
    province, country = item["host_province"], item["host_country"]
    if province is None:
        if country == HOME_COUNTRY and item["type"] != "online":
            return False
    elif country != HOME_COUNTRY or not is_province_code(province):
        return False
    if any(_UUID.fullmatch(u) is None for u in item["partner_org_ids"]):
        return False
    organizer = item["organizer"]
    if organizer is not None:
        code = organizer["code"]
        if _CODE.fullmatch(code) is None or (organizer["kind"] == "province" and not is_province_code(code)):
            return False
    return True


def _trimmed(text: str) -> bool:
    return text[:1] not in _SPACE and text[-1:] not in _SPACE


def _normalise(item: dict[str, Any]) -> None:
    """`EventContent._normalise`: lists lose duplicates (and blank tags), countries are sorted."""
    if item["fields"]:
        item["fields"] = unique_tags(item["fields"])
    if item["target_groups"]:
        item["target_groups"] = unique_tags(item["target_groups"])
    if len(item["countries"]) > 1:
        item["countries"] = sorted(set(item["countries"]))
    if len(item["partner_org_ids"]) > 1:
        item["partner_org_ids"] = list(dict.fromkeys(item["partner_org_ids"]))
