"""The talent domain: a society's record of a person (what a sync sends) and the `Person` aggregate,
which owns its rules, its version and its erasure.

A person's record holds personal data (`PERSONAL_FIELDS`): it lives only in this service's database,
is never published, never logged, and is erased (not flagged) when the person leaves the pool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Annotated, Any, Literal, Self

import orjson
from common.regions import country_codes, is_province_code
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

Group = Literal["leading_scientist", "engineer", "young_scientist", "woman_scientist", "youth", "overseas_expert"]
Role = Literal[
    "president", "vice_president", "executive_board", "secretary_general", "committee_chair", "member", "other"
]
GROUPS: tuple[str, ...] = Group.__args__  # type: ignore[attr-defined]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
Mode = Literal["delta", "full"]

PERSONAL_FIELDS: tuple[str, ...] = ("name", "name_en", "gender", "birth_year", "affiliation", "email", "orcid")
HOME_COUNTRY = "CN"
MAX_SYNC_RECORDS = 10_000  # per JSON sync request; a stream has no count limit
MAX_POSTS = 50
MAX_LIST = 250
EARLIEST_BIRTH_YEAR = 1900
LATEST_BIRTH_YEAR = 2025  # nobody younger than a newborn of the contract's current year
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2100, 12, 31)

NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_COUNTRIES = frozenset(country_codes())


def _text(min_length: int | None, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=NO_CONTROL)


Code = Annotated[str, _text(1, 64)]
Name = Annotated[str, _text(1, 300)]
Tag = Annotated[str, _text(1, 100)]
Country = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2)]
Province = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
Orcid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{4}-\d{4}-\d{4}-\d{3}[\dXx]$")]
Date = Annotated[date, Field(ge=EARLIEST_DATE, le=LATEST_DATE)]

# An e-mail address as people type them: one @, a dotted domain, no spaces or control characters.
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def orcid_checksum_ok(orcid: str) -> bool:
    """ISO 7064 MOD 11-2, the ORCID check digit (the last character, `X` for 10)."""
    digits = orcid.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1].upper() == ("X" if check == 10 else str(check))


def _check_country(value: str | None, what: str) -> str | None:
    # The messages never repeat the value: records are personal data and errors reach logs and files.
    if value is not None and value not in _COUNTRIES:
        raise ValueError(f"{what} is not an ISO 3166-1 alpha-2 country code")
    return value


class PostRecord(BaseModel):
    """A post the person holds (or held) in an international organization."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organization: Name = Field(description="The international organization (≤ 300 characters).")
    organization_country: Country | None = Field(
        default=None, description="Where the organization is seated (ISO 3166-1 alpha-2), or null."
    )
    role: Role = Field(description="The post's level.")
    start_date: Date = Field(description="ISO 8601 date.")
    end_date: Date | None = Field(default=None, description="Null while the post is held; on or after `start_date`.")

    @field_validator("organization_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _check_country(value, "organization_country")

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class PersonRecord(BaseModel):
    """One person as a society sends it in a sync. `deleted: true` erases the person (then only
    `external_id` is needed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "CMES-000123",
                    "name": "王芳",
                    "name_en": "Wang Fang",
                    "gender": "F",
                    "birth_year": 1978,
                    "groups": ["woman_scientist", "engineer"],
                    "country": "CN",
                    "province": "110000",
                    "affiliation": "Tsinghua University",
                    "email": "wang.fang@example.org",
                    "orcid": "0000-0002-1825-0097",
                    "fields": ["mechanical engineering"],
                    "reserve": True,
                    "posts": [
                        {
                            "organization": "World Federation of Engineering Organizations",
                            "organization_country": "FR",
                            "role": "executive_board",
                            "start_date": "2023-10-01",
                            "end_date": None,
                        }
                    ],
                    "deleted": False,
                }
            ]
        },
    )

    external_id: Code = Field(description="The society's own id of the person (≤ 64 characters, unique per society).")
    name: Name | None = Field(default=None, description="Personal. Required unless `deleted`.")
    name_en: Name | None = Field(default=None, description="Personal.")
    gender: Literal["F", "M"] | None = Field(default=None, description="Personal: `F`, `M` or null.")
    birth_year: int | None = Field(default=None, ge=EARLIEST_BIRTH_YEAR, le=LATEST_BIRTH_YEAR, description="Personal.")
    groups: list[Group] = Field(default_factory=list, max_length=len(GROUPS), description="The pools the person is in.")
    country: Country = Field(
        default=HOME_COUNTRY, description="Country of residence (ISO 3166-1 alpha-2), `CN` by default."
    )
    province: Province | None = Field(
        default=None, description="GB/T 2260 provincial code; only for people living in China (`country` CN)."
    )
    affiliation: Name | None = Field(default=None, description="Personal.")
    email: Email | None = Field(default=None, description="Personal.")
    orcid: Orcid | None = Field(default=None, description="Personal; `0000-0002-1825-0097`, check digit verified.")
    fields: list[Tag] = Field(default_factory=list, max_length=MAX_LIST, description="Fields of expertise.")
    reserve: bool = Field(default=False, description="In the reserve pool for international posts.")
    posts: list[PostRecord] = Field(default_factory=list, max_length=MAX_POSTS, description="At most 50.")
    deleted: bool = Field(default=False, description="True: erase this person.")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return _check_country(value, "country") or HOME_COUNTRY

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return value

    @field_validator("orcid")
    @classmethod
    def _orcid(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.upper()
            if not orcid_checksum_ok(value):
                raise ValueError("the ORCID check digit does not match")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.deleted:
            return self
        if self.name is None:
            raise ValueError("name is required (unless deleted)")
        if self.province is not None:
            if self.country != HOME_COUNTRY:
                raise ValueError("province is only for people living in China (country CN)")
            if not is_province_code(self.province):
                raise ValueError("province is not a GB/T 2260 provincial code")
        return self

    def content(self) -> dict[str, Any]:
        """What the society says of the person, JSON-ready and canonical (the hash is taken of it)."""
        return self.model_dump(mode="json", exclude={"external_id", "deleted"})


def content_hash(content: Mapping[str, Any]) -> str:
    """Two records with the same content have the same hash (compared in the database, not in Python)."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Person:
    """A person in a society's pool. Created at version 1; +1 per change; erasure clears every
    personal field and the public content and leaves only the id, the society and the version.
    A person once erased is never restored: the same `external_id` synced later is a new person."""

    id: str
    society: str
    external_id: str | None
    version: int
    content: dict[str, Any] = field(default_factory=dict)
    content_hash: str | None = None
    deleted: bool = False

    @classmethod
    def new(cls, person_id: str, society: str, record: PersonRecord) -> Person:
        content = record.content()
        return cls(person_id, society, record.external_id, 1, content, content_hash(content))

    def replaced_by(self, record: PersonRecord) -> Person:
        """The person with the record's content: a new version, or itself when nothing changed."""
        if self.deleted:
            raise ValueError("an erased person cannot change")
        content = record.content()
        digest = content_hash(content)
        if digest == self.content_hash:
            return self
        return replace(self, content=content, content_hash=digest, version=self.version + 1)

    def erased(self) -> Person:
        if self.deleted:
            return self
        return Person(self.id, self.society, None, self.version + 1, {}, None, deleted=True)

    def public_state(self) -> dict[str, Any]:
        """What anyone may read and what is published: no personal field, no external_id."""
        c = self.content
        return {
            "id": self.id,
            "version": self.version,
            "society": self.society,
            "groups": list(c.get("groups", [])),
            "country": c.get("country"),
            "province": c.get("province"),
            "reserve": bool(c.get("reserve", False)),
            "posts": list(c.get("posts", [])),
            "deleted": self.deleted,
        }

    def full_state(self) -> dict[str, Any]:
        """The society's own view (and admin's): the public state, the external_id and every field."""
        return {
            **self.public_state(),
            "external_id": self.external_id,
            **{name: self.content.get(name) for name in PERSONAL_FIELDS},
            "fields": list(self.content.get("fields", [])),
        }
