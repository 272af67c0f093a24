"""What an exchange event is and which values it may hold: pure rules, no web or database code.

The pydantic models here are the single definition of a valid event; the API, the batch endpoint
and the spreadsheet uploader all validate with them, so a row the uploader accepts locally is a row
the service accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Self

from common.regions import PROVINCES, country_codes, is_province_code
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

EventType = Literal[
    "conference",
    "forum",
    "dialogue",
    "delegation_in",
    "delegation_out",
    "youth_camp",
    "exhibition",
    "training",
    "online",
    "other",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
OrganizerKind = Literal["province", "society", "hq"]
Status = Literal["active", "cancelled"]

EARLIEST = date(1949, 1, 1)
LATEST = date(2100, 12, 31)
MAX_COUNT = 100_000_000  # far above any real event; keeps values inside a 64-bit column
MAX_TITLE = 500
MAX_LIST = 500
MAX_BATCH = 1000  # events per batch request
HOME_COUNTRY = "CN"


# Text and code checks are patterns run by pydantic-core (no Python call per value: the batch
# endpoint validates 1,000 items per request); `explain` gives their errors readable messages.
# PostgreSQL cannot store NUL in text, and no title or code legitimately holds control characters.
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
# A required text: the same, with one character that is not white space, so that the OpenAPI says what the
# stripping implies (a value of spaces alone is refused as empty).
NOT_BLANK = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*[^\s\x00-\x08\x0b\x0c\x0e-\x1f][^\x00-\x08\x0b\x0c\x0e-\x1f]*$"


# A country code in either case; each letter spelled out ([Dd][Ee]) rather than `(?i)`, whose Unicode
# case folding would let e.g. the Kelvin sign through as `K`.
def _either_case(codes: frozenset[str]) -> str:
    return "^(?:" + "|".join(f"[{c[0]}{c[0].lower()}][{c[1]}{c[1].lower()}]" for c in sorted(codes)) + ")$"


COUNTRY = _either_case(country_codes())
PARTNER_COUNTRY = _either_case(country_codes() - {HOME_COUNTRY})  # `countries` lists the partners
# What the documents state, exactly as accepted (schemathesis checks both ways): surrounding whitespace is
# stripped before these patterns run, so the documented patterns allow it.
PROVINCE_CODES: tuple[str, ...] = tuple(sorted(p.code for p in PROVINCES))
_PROVINCE = "(?:" + "|".join(PROVINCE_CODES) + ")"
DOC_COUNTRY = r"^\s*" + COUNTRY[1:-1] + r"\s*$"
DOC_PARTNER_COUNTRY = r"^\s*" + PARTNER_COUNTRY[1:-1] + r"\s*$"
_DOC_HOME = r"^\s*[Cc][Nn]\s*$"
# A date from 1949-01-01 to 2100-12-31 (the day itself is checked by `format: date`).
DOC_DATE = r"^(?:19(?:49|[5-9]\d)|20\d\d|2100)-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"
_DOC_PROVINCE = r"^\s*" + _PROVINCE + r"\s*$"
_DOC_PROVINCE_OR_BLANK = r"^\s*" + _PROVINCE + r"?\s*$"
# `host_province`'s rules, which depend on `host_country` (absent means CN) and `type`.
HOST_PROVINCE_RULES: list[JsonValue] = [
    {
        "if": {"properties": {"host_country": {"pattern": _DOC_HOME}, "type": {"not": {"const": "online"}}}},
        "then": {
            "required": ["host_province"],
            "properties": {"host_province": {"type": "string", "pattern": _DOC_PROVINCE}},
        },
    },
    {
        "if": {"required": ["host_country"], "properties": {"host_country": {"not": {"pattern": _DOC_HOME}}}},
        "then": {
            "properties": {"host_province": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": r"^\s*$"}]}}
        },
    },
]
_PATTERN_MESSAGES: dict[str, Callable[[Any], str]] = {
    NO_CONTROL: lambda _value: "must not contain control characters",
    NOT_BLANK: lambda _value: "must not contain control characters",  # a blank value fails as too short first
    COUNTRY: lambda value: f"{value!r} is not an ISO 3166-1 alpha-2 country code",
    PARTNER_COUNTRY: lambda value: (
        "lists partner countries: `CN` must not be in it"
        if value.strip().upper() == HOME_COUNTRY
        else f"{value!r} is not an ISO 3166-1 alpha-2 country code"
    ),
}


def explain(errors: list[Any]) -> list[Any]:
    """pydantic's errors with the pattern mismatches above told in words (as the Python checks they
    replace said them), not as the regular expression."""
    for error in errors:
        if error["type"] == "string_pattern_mismatch" and (say := _PATTERN_MESSAGES.get(error["ctx"]["pattern"])):
            error["msg"] = f"Value error, {say(error['input'])}"
    return errors


def _text(min_length: int | None = None, max_length: int | None = None) -> StringConstraints:
    # Surrounding whitespace is removed before the length and control-character checks.
    pattern = NOT_BLANK if min_length else NO_CONTROL
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=pattern)


# Stored upper-case: the pattern accepts either case, then pydantic-core upper-cases.
Country = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=COUNTRY, to_upper=True),
    WithJsonSchema({"type": "string", "pattern": DOC_COUNTRY}),
]
PartnerCountry = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=PARTNER_COUNTRY, to_upper=True),
    WithJsonSchema({"type": "string", "pattern": DOC_PARTNER_COUNTRY}),
]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# Blank tags are dropped (`_tags`), so whitespace is not stripped before the length check here.
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL)]
# A PATCH's tags are checked in full when the change is applied (`apply_to`, errors `explain`ed there);
# FastAPI's own error handler, which parses the PATCH body, knows nothing of `explain`.
PatchTag = Annotated[str, Field(min_length=1, max_length=100)]


class Organizer(BaseModel):
    """The body that organises the event: a provincial association, a national society or HQ."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "if": {"properties": {"kind": {"const": "province"}}},
            "then": {"properties": {"code": {"enum": list(PROVINCE_CODES)}}},
        },
    )

    kind: OrganizerKind = Field(description="`province`, `society` or `hq`.", examples=["province"])
    code: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="GB/T 2260 code for a province (`440000`), the society's code (`CMES`), or `HQ`.",
        examples=["440000"],
    )

    @model_validator(mode="after")
    def _province_code(self) -> Self:
        if self.kind == "province" and not is_province_code(self.code):
            raise ValueError(f"{self.code!r} is not a GB/T 2260 provincial-level code")
        return self


def unique_tags(values: list[str]) -> list[str]:
    """Tags stripped, blank ones dropped, duplicates removed (first kept). A list of one, the usual
    case, without building a new list when its tag needs no stripping (`strip` then returns it)."""
    if len(values) == 1:
        tag = values[0].strip()
        return values if tag is values[0] else [tag] if tag else []
    return list(dict.fromkeys(tag for v in values if (tag := v.strip())))


class EventContent(BaseModel):
    """The client-supplied content of an event: what idempotency compares and updates change."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)

    title: Annotated[str, _text(1, MAX_TITLE)] = Field(
        description="Title of the event (1–500 characters, surrounding spaces removed).",
        examples=["China–Germany Forum on Hydrogen Energy"],
    )
    type: EventType = Field(description="Kind of event.", examples=["forum"])
    # Range checks as schema constraints: enforced by pydantic-core, no Python call per item.
    start_date: date = Field(
        ge=EARLIEST,
        le=LATEST,
        description="First day (ISO 8601, 1949-01-01 … 2100-12-31).",
        examples=["2025-05-10"],
        json_schema_extra={"pattern": DOC_DATE},
    )
    end_date: date = Field(
        ge=EARLIEST,
        le=LATEST,
        description="Last day (1949-01-01 … 2100-12-31), on or after `start_date` (not expressible in JSON "
        "Schema: a later start is 422 at `end_date`).",
        examples=["2025-05-12"],
        json_schema_extra={"pattern": DOC_DATE},
    )
    host_country: Country = Field(
        default=HOME_COUNTRY,
        description="ISO 3166-1 alpha-2 code of the venue's country; `CN` by default.",
        examples=["CN"],
    )
    host_province: Annotated[
        Annotated[str, _text()] | None,
        WithJsonSchema({"anyOf": [{"type": "string", "pattern": _DOC_PROVINCE_OR_BLANK}, {"type": "null"}]}),
    ] = Field(
        default=None,
        validate_default=True,
        description="GB/T 2260 provincial-level code of the venue: required when `host_country` is `CN` and the "
        "type is not `online`; absent, null or blank for a venue abroad (the event's `allOf` states both).",
        examples=["440000"],
    )
    city: Annotated[str, _text(max_length=200)] | None = Field(
        default=None, description="City of the venue.", examples=["Guangzhou"]
    )
    participants: Count = Field(default=0, description="Number of participants (≥ 0).", examples=[320])
    foreign_participants: Count = Field(
        default=0,
        description="Participants from abroad (0 … `participants`; more is 422 at this field).",
        examples=[85],
    )
    papers: Count = Field(default=0, description="Papers exchanged (≥ 0).", examples=[64])
    countries: list[PartnerCountry] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Partner countries represented (ISO 3166-1 alpha-2, never `CN`); stored upper-case, "
        "de-duplicated and sorted.",
        examples=[["DE", "FR"]],
    )
    partner_org_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Ids of partner organizations (from the partners service) that took part.",
        examples=[["0b9f6f1e-4d0f-4c59-9a55-7f1b8b0b6f10"]],
    )
    fields: list[Tag] = Field(
        default_factory=list, max_length=100, description="Fields of science or cooperation.", examples=[["energy"]]
    )
    target_groups: list[Tag] = Field(
        default_factory=list,
        max_length=100,
        description="Groups addressed, e.g. `young_scientist`, `woman_scientist`.",
        examples=[["young_scientist"]],
    )
    flagship: bool = Field(default=False, description="Whether this is a flagship exchange project.")

    @model_validator(mode="after")
    def _normalise(self) -> Self:
        # Normalising only, which cannot fail: one Python call per event instead of one per field
        # (the checks are the patterns above). Blank means none; lists lose duplicates (and blank
        # tags); countries are sorted.
        # Empty lists, the usual case, are left as they are (this runs once per event of a batch).
        values = self.__dict__  # plain assignment: validate_assignment is off, setattr costs more
        if not self.city:
            values["city"] = None
        if self.fields:
            values["fields"] = unique_tags(self.fields)
        if self.target_groups:
            values["target_groups"] = unique_tags(self.target_groups)
        if len(self.countries) > 1:
            values["countries"] = sorted(set(self.countries))
        if len(self.partner_org_ids) > 1:
            values["partner_org_ids"] = list(dict.fromkeys(self.partner_org_ids))
        return self

    # Cross-field rules are field validators reading the fields defined before them (`info.data`),
    # so each error is reported at the field it concerns.
    @field_validator("end_date", mode="after")
    @classmethod
    def _not_before_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start_date")
        if start is not None and value < start:
            raise ValueError("must be on or after start_date")
        return value

    @field_validator("foreign_participants", mode="after")
    @classmethod
    def _not_above_participants(cls, value: int, info: ValidationInfo) -> int:
        participants = info.data.get("participants")
        if participants is not None and value > participants:
            raise ValueError("must not exceed participants")
        return value

    @field_validator("host_province", mode="after")
    @classmethod
    def _province(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = value or None  # blank means none
        host_country, type_ = info.data.get("host_country"), info.data.get("type")
        if value is not None and not is_province_code(value):
            raise ValueError(f"{value!r} is not a GB/T 2260 provincial-level code")
        if value is None and host_country == HOME_COUNTRY and type_ is not None and type_ != "online":
            raise ValueError("required for an event held in China (host_country CN) unless it is online")
        if value is not None and host_country is not None and host_country != HOME_COUNTRY:
            raise ValueError("only for venues in China: leave it empty when host_country is not CN")
        return value

    def canonical(self) -> dict[str, Any]:
        """The content as JSON-ready values, normalised, so equal content compares equal."""
        return self.model_dump(mode="json")


# A valid new event: the OpenAPI example, and the body the tests and the benchmarks start from.
EVENT_EXAMPLE: dict[str, Any] = {
    "external_ref": "GD-2025-0042",
    "title": "China–Germany Forum on Hydrogen Energy",
    "type": "forum",
    "start_date": "2025-05-10",
    "end_date": "2025-05-12",
    "host_country": "CN",
    "host_province": "440000",
    "city": "Guangzhou",
    "participants": 320,
    "foreign_participants": 85,
    "papers": 64,
    "countries": ["DE", "FR"],
    "fields": ["energy"],
    "target_groups": ["young_scientist"],
    "flagship": False,
}


class EventCreate(EventContent):
    """A new event. `organizer` may be named only by `hq` with `admin` (or naming one's own body)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": HOST_PROVINCE_RULES,
            "examples": [EVENT_EXAMPLE],
        },
    )

    external_ref: Annotated[str, _text(1, 200)] = Field(
        description="The client's own id of the event, unique per organizer: posting it again is idempotent.",
        examples=["GD-2025-0042"],
    )
    organizer: Organizer | None = Field(
        default=None,
        description="The organizing body; defaults to the token's body. Only `hq` with `admin` may name another.",
    )

    def canonical_content(self) -> dict[str, Any]:
        """The content as `EventContent.canonical()` gives it, in one serialiser call."""
        return self.model_dump(mode="json", exclude=_NOT_CONTENT)

    def json_ready(self) -> dict[str, Any]:
        """`model_dump(mode="json")` for the batch path, a third of its cost: the validated values
        are JSON-ready already but for the fields converted here (`JSON_CONVERTED`; a test holds the
        two equal and fails when a field of another type is added). A shallow copy: the lists are the
        model's own, so change the dict's keys, never the lists in place."""
        values = self.__dict__.copy()
        values["start_date"] = self.start_date.isoformat()
        values["end_date"] = self.end_date.isoformat()
        if self.partner_org_ids:
            values["partner_org_ids"] = [str(u) for u in self.partner_org_ids]
        if self.organizer is not None:
            values["organizer"] = {"kind": self.organizer.kind, "code": self.organizer.code}
        return values


CONTENT_FIELDS: tuple[str, ...] = tuple(EventContent.model_fields)
_NOT_CONTENT = {"external_ref", "organizer"}
JSON_CONVERTED = frozenset({"start_date", "end_date", "partner_org_ids", "organizer"})


def _patch_schema(schema: dict[str, Any]) -> None:
    """Each field of a change documented as the event's own field (the change is checked against it
    when applied): same constraints, no default, `null` only where it removes a value."""
    content = EventContent.model_json_schema()["properties"]
    for name, field in schema["properties"].items():
        documented = {key: value for key, value in content[name].items() if key != "default"}
        schema["properties"][name] = documented | {"description": field["description"]}
    schema["examples"] = [{"participants": 350, "foreign_participants": 90, "countries": ["DE", "FR"]}]


class EventPatch(BaseModel):
    """A partial change: only the fields present are changed; the result must be a valid event (the rules
    between fields, e.g. `host_province` and `host_country`, apply to the event as changed: 422)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_patch_schema,
    )

    title: str | None = Field(default=None, description="See the event's `title`.")
    type: EventType | None = Field(default=None, description="See the event's `type`.")
    start_date: date | None = Field(default=None, description="See the event's `start_date`.")
    end_date: date | None = Field(default=None, description="See the event's `end_date`.")
    host_country: str | None = Field(default=None, description="See the event's `host_country`.")
    host_province: str | None = Field(default=None, description="See `host_province`; `null` removes it.")
    city: str | None = Field(default=None, description="See `city`; `null` removes it.")
    participants: Count | None = Field(default=None, description="See `participants`.")
    foreign_participants: Count | None = Field(default=None, description="See `foreign_participants`.")
    papers: Count | None = Field(default=None, description="See `papers`.")
    countries: list[str] | None = Field(default=None, max_length=MAX_LIST, description="See `countries`.")
    partner_org_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_LIST, description="See ids.")
    fields: list[PatchTag] | None = Field(default=None, max_length=100, description="See `fields`.")
    target_groups: list[PatchTag] | None = Field(default=None, max_length=100, description="See `target_groups`.")
    flagship: bool | None = Field(default=None, description="See `flagship`.")

    @field_validator(
        "title",
        "type",
        "start_date",
        "end_date",
        "host_country",
        "participants",
        "foreign_participants",
        "papers",
        "countries",
        "partner_org_ids",
        "fields",
        "target_groups",
        "flagship",
        mode="after",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for fields sent: null would erase a required value.
        if value is None:
            raise ValueError("must not be null")
        return value

    def apply_to(self, content: EventContent) -> EventContent:
        """The content after this change, validated as a whole (cross-field rules included)."""
        merged = content.model_dump()
        merged.update({name: getattr(self, name) for name in self.model_fields_set})
        return EventContent.model_validate(merged)


def can_act_for(*, org_kind: str, org_code: str, is_admin: bool, organizer: Organizer) -> bool:
    """A body acts for itself; `hq` with `admin` acts for any body."""
    return may_act_for(
        org_kind=org_kind, org_code=org_code, is_admin=is_admin, kind=organizer.kind, code=organizer.code
    )


def may_act_for(*, org_kind: str, org_code: str, is_admin: bool, kind: str, code: str) -> bool:
    """`can_act_for` with the organizer given as its kind and code."""
    return is_admin or (kind == org_kind and code == org_code)
