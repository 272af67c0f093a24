"""Request and answer shapes of the HTTP API (XCreate / XUpdate / XRead), every field bounded as the
contract says; write bodies refuse unknown fields."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

import common.problems
from common.openapi_types import COUNTRY, Day
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from partners.contracts.v1 import AgreementState, BodyRef, MembershipState, OrganizationState
from partners.domain.agreement import AgreementKind
from partners.domain.names import ror_id
from partners.domain.organization import OrganizationKind

Responses = dict[int | str, dict[str, Any]]
MAX_ITEMS = 250
# What the document states, exactly as the checks below accept it (schemathesis checks both ways).
WEBSITE = r"^https?://[^\s\x00-\x1f\x7f]{4,}$"
_ROR_CHARS = "0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z"
ROR = rf"^\s*(?:[Hh][Tt][Tt][Pp][Ss]?://[Rr][Oo][Rr]\.[Oo][Rr][Gg]/)?0[{_ROR_CHARS}]{{6}}[0-9]{{2}}\s*$"


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(COUNTRY, value):
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return value.upper()


def _website(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(WEBSITE, value):
        raise ValueError("must be an http(s):// address")
    return value


def _ror(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(ROR, value):
        raise ValueError("not a ROR id: `0`, six base-32 characters and two check digits (e.g. `03wnrjx87`)")
    return ror_id(value)


_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, Field(min_length=1, max_length=300, pattern=_NO_CONTROL), AfterValidator(_text)]
FreeText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$"), AfterValidator(_text)]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")]
Country = Annotated[
    str | None,
    Field(
        description="ISO 3166-1 alpha-2, either case (`DE`); null for an international organization.",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": COUNTRY}, {"type": "null"}]},
    ),
    AfterValidator(_country),
]
RorId = Annotated[
    Annotated[str, Field(max_length=40)] | None,
    Field(
        description="A ROR id, bare (`03wnrjx87`) or as its URL, either case: `0`, six Crockford base-32 "
        "characters and two ISO 7064 Mod 97-10 check digits (the pattern; wrong check digits: 422).",
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 40, "pattern": ROR}, {"type": "null"}]},
    ),
    AfterValidator(_ror),
]
Website = Annotated[
    Annotated[str, Field(max_length=2000)] | None,
    Field(
        description="An http(s) address, no spaces or control characters.",
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 2000, "pattern": WEBSITE}, {"type": "null"}]},
    ),
    AfterValidator(_website),
]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationCreate(_Write):
    """A partner organization to register."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "The Royal Society",
                    "name_zh": "英国皇家学会",
                    "country": "GB",
                    "kind": "academy",
                    "ror_id": "03wnrjx87",
                    "website": "https://royalsociety.org",
                }
            ],
            # Only an international organization has no country.
            "if": {"not": {"required": ["country"], "properties": {"country": {"type": "string"}}}},
            "then": {"properties": {"kind": {"const": "international_org"}}},
        },
    )

    name: Name = Field(description="The name in English (or its own language).")
    name_zh: Name | None = Field(default=None, description="The name in Chinese.")
    country: Country = None
    kind: OrganizationKind = Field(
        description="What kind of organization it is (without a country: `international_org`)."
    )
    ror_id: RorId = None
    website: Website = None


class OrganizationUpdate(_Write):
    """Fields to change (those sent); the result must still be a valid, non-duplicate organization."""

    # `null` clears the optional fields; `name` and `kind` cannot be cleared (null: 422), so the document
    # shows no null for them.
    name: Name | SkipJsonSchema[None] = None
    name_zh: Name | None = None
    country: Country = None
    kind: OrganizationKind | SkipJsonSchema[None] = None
    ror_id: RorId = None
    website: Website = None

    @model_validator(mode="after")
    def _required_stay(self) -> OrganizationUpdate:
        for name in ("name", "kind"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class OrganizationRead(OrganizationState):
    """A partner organization."""


class OrganizationMerge(_Write):
    duplicate_id: uuid.UUID = Field(description="The duplicate, merged into the organization of the path.")


class MergeRead(BaseModel):
    survivor: OrganizationRead
    merged: OrganizationRead
    agreements_moved: int = Field(ge=0, description="Agreements whose partner became the survivor.")
    memberships_moved: int = Field(ge=0, description="Memberships moved to the survivor.")


PartnerIds = Annotated[
    list[uuid.UUID], Field(min_length=1, max_length=MAX_ITEMS, description="The partner organizations (≥ 1).")
]
Fields = Annotated[list[Code], Field(max_length=MAX_ITEMS, description="Fields of cooperation (codes).")]


class AgreementCreate(_Write):
    """An agreement to record; the signing body comes from the token (an admin may name `signed_by`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_ref": "HQ-AGR-2025-007",
                    "title": "Memorandum of understanding on young scientists' exchange",
                    "kind": "mou",
                    "partner_org_ids": ["0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a01"],
                    "signed_on": "2025-05-10",
                    "expires_on": "2030-05-09",
                    "fields": ["young_scientists"],
                    "flagship": True,
                }
            ]
        },
    )

    external_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Your own id of it: posting it again is harmless (200, the same agreement).",
    )
    title: Name = Field(description="Its title.")
    kind: AgreementKind = Field(description="What kind of document it is.")
    partner_org_ids: PartnerIds
    signed_on: Day = Field(description="The day it was signed.")
    expires_on: Day | None = Field(default=None, description="Its last day in force (after signed_on).")
    fields: Fields = Field(default_factory=list)
    flagship: bool = Field(default=False, description="A flagship project of the plan.")
    signed_by: BodyRef | None = Field(default=None, description="Admins only: the body that signed it.")

    @model_validator(mode="after")
    def _expires_after_signing(self) -> AgreementCreate:
        if self.expires_on is not None and self.expires_on <= self.signed_on:
            raise ValueError("expires_on must be after signed_on")
        return self


class AgreementUpdate(_Write):
    """Fields to change (those sent). `expires_on` changes by renewing; `status` by terminating."""

    # No field can be cleared (null: 422), so the document shows no null.
    title: Name | SkipJsonSchema[None] = None
    kind: AgreementKind | SkipJsonSchema[None] = None
    partner_org_ids: PartnerIds | SkipJsonSchema[None] = None
    fields: Fields | SkipJsonSchema[None] = None
    flagship: bool | SkipJsonSchema[None] = None
    will_not_renew: bool | SkipJsonSchema[None] = Field(
        default=None, description="true: no renewal is planned; notices stop."
    )

    @model_validator(mode="after")
    def _no_nulls(self) -> AgreementUpdate:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class AgreementRenew(_Write):
    expires_on: Day = Field(description="The new last day in force: after the current one, today or later.")


class AgreementTerminate(_Write):
    reason: FreeText = Field(description="Why it ends.")


class AgreementRead(AgreementState):
    """A cooperation agreement."""


class MembershipCreate(_Write):
    """A membership to record; the member body comes from the token (an admin may name `member`)."""

    organization_id: uuid.UUID = Field(description="The international organization (registered here first).")
    since: Day = Field(description="Member since.")
    member: BodyRef | None = Field(default=None, description="Admins only: the member body.")


class MembershipEnd(_Write):
    until: Day | None = Field(default=None, description="Its last day; today when omitted.")


class MembershipRead(MembershipState):
    """A membership in an international organization."""


class AuditActor(BaseModel):
    sub: str = Field(max_length=300)
    kind: str = Field(max_length=16)
    code: str = Field(max_length=32)


class HistoryEntry(BaseModel):
    at: str = Field(description="When (UTC).")
    actor: AuditActor = Field(description="Who: the token's client and body (the scheduler for expiries).")
    action: Literal["sign", "update", "renew", "terminate", "expire", "document", "merge"] = Field(
        description="What was done."
    )
    changes: dict[str, dict[str, Any]] = Field(description="{field: {old, new}} of every field that changed.")


def _page(item: type[BaseModel], doc: str) -> type[BaseModel]:
    class Page(BaseModel):
        items: list[item] = Field(description="This page's items.")  # type: ignore[valid-type]
        next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

    Page.__name__ = Page.__qualname__ = f"{item.__name__.removesuffix('Read')}Page"
    Page.__doc__ = doc
    return Page


OrganizationPage = _page(OrganizationRead, "One page of organizations, in registration order.")
AgreementPage = _page(AgreementRead, "One page of agreements, in recording order.")
MembershipPage = _page(MembershipRead, "One page of memberships, in recording order.")
HistoryPage = _page(HistoryEntry, "An agreement's history, oldest first.")


class ProblemDetails(common.problems.ProblemDetails):
    """An RFC 9457 problem (`application/problem+json`)."""

    existing_id: str | None = Field(default=None, description="For 409: the existing organization or agreement.")
    current_version: int | None = Field(default=None, description="For 412: the current version.")


_WHY = {
    400: "The body could not be read",
    401: "Missing, expired or invalid token",
    403: "Wrong scope, or another body's record",
    404: "No such record",
    409: "A duplicate, or a state that does not allow the change",
    412: "`If-Match` names an older version",
    413: "The body is over the size limit",
    415: "Not a PDF (`Content-Type: application/pdf`)",
    422: "The request is not valid; `errors` names every invalid field",
}


def problems(*statuses: int) -> Responses:
    return {status: common.problems.problem_response(_WHY[status]) for status in statuses}
