"""What reporting reads from the partners, events and talent topics (tolerant reader).

Only the fields the projections use are declared; everything else in `data` is ignored, so producers
may add fields freely. A message that lacks a field we need, or carries a value we cannot attribute
(an unknown country code), fails validation and goes to the dead-letter topic.

Every declared field is bounded as the contract says (codes ≤ 32 characters, names ≤ 300, lists ≤ 250
items, `posts` ≤ 50, counts and `version` 0 … 10^12), and never past the column that stores it: a value
out of bounds is dead-lettered when decoded, live and in `reporting rebuild` alike, instead of failing
the database transaction that would apply it.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Annotated, Literal

from common.regions import is_country_code
from pydantic import BaseModel, ConfigDict, Field, field_validator

BodyKind = Literal["province", "society", "hq"]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
MAX_COUNT = 10**12
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Version = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# Stored in String(64) key columns (rm_aggregates.id, rm_agreement_orgs.org_id); PostgreSQL text holds no NUL.
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
# A body's code also becomes the region `body:<kind>:<code>` (String(64)); `|` separates stored facts.
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^|\x00-\x1f]+$")]
ShortCode = Annotated[str, Field(max_length=32)]  # read, compared, never stored as it is
Name = Annotated[str, Field(max_length=300)]
MAX_ITEMS = 250
MAX_POSTS = 50


def _country(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if is_country_code(value):  # the usual case, already canonical
        return value
    code = value.strip().upper()
    if not is_country_code(code):
        raise ValueError(f"unknown country code {value!r}")
    return code


@functools.lru_cache(maxsize=65536)  # once per distinct list: the events stream repeats them
def _partner_countries(value: tuple[str, ...]) -> tuple[str, ...]:
    codes = {v.strip().upper() for v in value} - {""}
    unknown = [c for c in codes if not is_country_code(c)]
    if unknown:
        raise ValueError(f"unknown country code {sorted(unknown)[0]!r}")
    codes.discard("CN")  # the contract forbids CN among partner countries; never count China as one
    return tuple(sorted(codes))


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Body(_Tolerant):
    kind: BodyKind
    code: Code


class EventState(_Tolerant):
    id: Id | None = None
    version: Version
    organizer: Body
    type: Slug = "other"
    start_date: date
    host_country: ShortCode | None = "CN"
    host_province: ShortCode | None = None
    participants: Count = 0
    foreign_participants: Count = 0
    papers: Count = 0
    countries: list[ShortCode] = Field(default_factory=list, max_length=MAX_ITEMS)
    flagship: bool = False
    status: ShortCode = "active"

    @field_validator("host_country")
    @classmethod
    def _host_country(cls, value: str | None) -> str | None:
        return _country(value)

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        return list(_partner_countries(tuple(value))) if value else value


class OrganizationState(_Tolerant):
    id: Id | None = None
    version: Version
    country: ShortCode | None = None
    kind: ShortCode | None = None
    deleted: bool = False
    status: ShortCode | None = None

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return _country(value)


class AgreementState(_Tolerant):
    id: Id | None = None
    version: Version
    signed_on: date
    expires_on: date | None = None
    # rm_agreement_regions.status is String(16): the contract's statuses (active, expired, terminated) fit.
    status: str = Field(default="active", min_length=1, max_length=16, pattern=r"^[^\x00-\x1f]+$")
    partner_org_ids: list[Id] = Field(default_factory=list, max_length=MAX_ITEMS)
    flagship: bool = False
    signed_by: Body  # the signing body, as the contract names it

    @property
    def signer(self) -> Body:
        return self.signed_by


class Post(_Tolerant):
    organization: Name | None = None
    organization_country: ShortCode | None = None
    # A slug, like `groups` and an event's `type`: a role talent adds later is counted under its own key
    # (the report lists it after the vocabulary's), never dead-lettered (tests/contract/test_vocabularies.py).
    role: Slug = "other"
    start_date: date | None = None
    end_date: date | None = None

    @field_validator("organization_country")
    @classmethod
    def _org_country(cls, value: str | None) -> str | None:
        return _country(value)


class PersonState(_Tolerant):
    id: Id | None = None
    version: Version
    society: Code | None = None
    groups: list[Slug] = Field(default_factory=list, max_length=MAX_ITEMS)
    country: ShortCode | None = None
    province: ShortCode | None = None
    reserve: bool = False
    posts: list[Post] = Field(default_factory=list, max_length=MAX_POSTS)
    deleted: bool = False

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return _country(value)


class Removal(_Tolerant):
    """The least a removal message must carry."""

    id: Id | None = None
    version: Version
    society: Code | None = None
