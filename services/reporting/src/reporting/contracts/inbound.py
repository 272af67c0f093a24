"""What reporting reads from the partners, events and talent topics (tolerant reader).

Only the fields the projections use are declared; everything else in `data` is ignored, so producers
may add fields freely. A message that lacks a field we need, or carries a value we cannot attribute
(an unknown country code), fails validation and goes to the dead-letter topic.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Annotated, Literal

from common.regions import is_country_code
from pydantic import BaseModel, ConfigDict, Field, field_validator

BodyKind = Literal["province", "society", "hq"]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


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
    code: str = Field(min_length=1, max_length=48, pattern=r"^[^|\x00-\x1f]+$")  # `|` separates stored facts


class EventState(_Tolerant):
    id: str | None = None
    version: int = Field(ge=0)
    organizer: Body
    type: Slug = "other"
    start_date: date
    host_country: str | None = "CN"
    host_province: str | None = None
    participants: int = Field(default=0, ge=0)
    foreign_participants: int = Field(default=0, ge=0)
    papers: int = Field(default=0, ge=0)
    countries: list[str] = Field(default_factory=list)
    flagship: bool = False
    status: str = "active"

    @field_validator("host_country")
    @classmethod
    def _host_country(cls, value: str | None) -> str | None:
        return _country(value)

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        return list(_partner_countries(tuple(value))) if value else value


class OrganizationState(_Tolerant):
    id: str | None = None
    version: int = Field(ge=0)
    country: str | None = None
    kind: str | None = None
    deleted: bool = False
    status: str | None = None

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return _country(value)


class AgreementState(_Tolerant):
    id: str | None = None
    version: int = Field(ge=0)
    signed_on: date
    expires_on: date | None = None
    status: str = "active"
    partner_org_ids: list[str] = Field(default_factory=list)
    flagship: bool = False
    # The contract names no field for the signing body; the partners service may use any of these.
    signed_by: Body | None = None
    signatory: Body | None = None
    organizer: Body | None = None
    body: Body | None = None

    @property
    def signer(self) -> Body | None:
        return self.signed_by or self.signatory or self.organizer or self.body


PostRole = Literal[
    "president", "vice_president", "executive_board", "secretary_general", "committee_chair", "member", "other"
]


class Post(_Tolerant):
    organization: str | None = None
    organization_country: str | None = None
    role: PostRole = "other"
    start_date: date | None = None
    end_date: date | None = None

    @field_validator("organization_country")
    @classmethod
    def _org_country(cls, value: str | None) -> str | None:
        return _country(value)


class PersonState(_Tolerant):
    id: str | None = None
    version: int = Field(ge=0)
    society: str | None = None
    groups: list[Slug] = Field(default_factory=list)
    country: str | None = None
    province: str | None = None
    reserve: bool = False
    posts: list[Post] = Field(default_factory=list)
    deleted: bool = False

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return _country(value)


class Removal(_Tolerant):
    """The least a removal message must carry."""

    id: str | None = None
    version: int = Field(ge=0)
    society: str | None = None
