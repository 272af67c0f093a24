"""Version 1 of what the partners service publishes on `exchange.partners.v1` — also the resources its
API answers with. Additive changes only; a breaking change is a v2 topic.

These models are the contract, kept apart from the domain's aggregates: `*_state` functions turn an
aggregate into its published form, and a unit test fails when the two drift apart.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from common.asyncapi import PublishedEvent, asyncapi_document, vocabulary_sections
from pydantic import BaseModel, ConfigDict, Field

from partners.domain.agreement import Agreement, AgreementKind, AgreementStatus
from partners.domain.membership import Membership, MembershipStatus
from partners.domain.organization import Organization, OrganizationKind, OrganizationStatus

TOPIC = "exchange.partners.v1"
SOURCE = "/partners"
ORGANIZATION_REGISTERED = "exchange.organization.registered"
ORGANIZATION_UPDATED = "exchange.organization.updated"
ORGANIZATION_MERGED = "exchange.organization.merged"
AGREEMENT_SIGNED = "exchange.agreement.signed"
AGREEMENT_UPDATED = "exchange.agreement.updated"
AGREEMENT_RENEWED = "exchange.agreement.renewed"
AGREEMENT_EXPIRING = "exchange.agreement.expiring"
AGREEMENT_EXPIRED = "exchange.agreement.expired"
AGREEMENT_TERMINATED = "exchange.agreement.terminated"
MEMBERSHIP_RECORDED = "exchange.membership.recorded"
MEMBERSHIP_ENDED = "exchange.membership.ended"

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.json")
# The kinds and statuses (and renewal-notice days) with their zh/en labels: the data file this service
# publishes beside its AsyncAPI document. Only its sections: the file also says what it is.
VOCABULARY = vocabulary_sections(VOCABULARY_FILE)

MAX_VERSION = 10**12
Code = Annotated[str, Field(min_length=1, max_length=32)]
Name = Annotated[str, Field(min_length=1, max_length=300)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION, description="1 when created, +1 per change; also the ETag.")]


class BodyRef(BaseModel):
    """A body of the association: a province (GB/T 2260 code), a national society (its code) or HQ."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["province", "society", "hq"] = Field(description="`province`, `society` or `hq`.")
    code: Code = Field(description="`440000`, `CMES` or `HQ`.")


class _State(BaseModel):
    model_config = ConfigDict(extra="ignore")


_ORG_EXAMPLE: dict[str, Any] = {
    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a01",
    "name": "The Royal Society",
    "name_zh": "英国皇家学会",
    "country": "GB",
    "kind": "academy",
    "ror_id": "03wnrjx87",
    "website": "https://royalsociety.org",
    "status": "active",
    "merged_into": None,
    "created_by": {"kind": "hq", "code": "HQ"},
    "version": 1,
    "created_at": "2025-05-13T08:30:00Z",
    "updated_at": "2025-05-13T08:30:00Z",
}


class OrganizationState(_State):
    """A partner organization: the resource of the API and the `data` of its messages."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ORG_EXAMPLE]})

    id: uuid.UUID = Field(description="Assigned by the service.")
    name: Name = Field(description="The name in English (or the organization's own language).")
    name_zh: Name | None = Field(description="The name in Chinese.")
    country: Code | None = Field(description="ISO 3166-1 alpha-2; null for an international organization.")
    kind: OrganizationKind = Field(description="What kind of organization it is.")
    ror_id: str | None = Field(max_length=9, description="Its ROR id (`03wnrjx87`), when known.")
    website: str | None = Field(max_length=2000, description="Its website.")
    status: OrganizationStatus = Field(description="`active`, or `merged` (a duplicate: counts nowhere).")
    merged_into: uuid.UUID | None = Field(description="For a merged organization: the survivor's id.")
    created_by: BodyRef = Field(description="The body that registered it (it and admins may change it).")
    version: Version
    created_at: datetime = Field(description="When it was registered (UTC).")
    updated_at: datetime = Field(description="When it last changed (UTC).")


class MergedOrganizationState(OrganizationState):
    """A duplicate merged into its survivor: `status` is `merged`, `merged_into` the survivor's id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _ORG_EXAMPLE
                | {
                    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a09",
                    "name": "Royal Society (London)",
                    "ror_id": None,
                    "status": "merged",
                    "merged_into": _ORG_EXAMPLE["id"],
                    "version": 2,
                    "updated_at": "2025-06-01T02:00:00Z",
                }
            ]
        }
    )


class Renewal(BaseModel):
    renewed_on: date = Field(description="The day it was renewed (the association's time zone).")
    previous_expires_on: date = Field(description="Its expiry before the renewal.")
    expires_on: date = Field(description="Its expiry after the renewal.")


class SignedDocument(BaseModel):
    sha256: str = Field(max_length=64, description="SHA-256 of the PDF, hex.")
    size_bytes: int = Field(ge=1, le=20 * 1024 * 1024, description="Its size.")
    uploaded_at: datetime = Field(description="When it was uploaded (UTC).")


_AGREEMENT_EXAMPLE: dict[str, Any] = {
    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7b01",
    "external_ref": "HQ-AGR-2025-007",
    "title": "Memorandum of understanding on young scientists' exchange",
    "kind": "mou",
    "partner_org_ids": [_ORG_EXAMPLE["id"]],
    "signed_on": "2025-05-10",
    "expires_on": "2030-05-09",
    "fields": ["young_scientists", "joint_research"],
    "flagship": True,
    "signed_by": {"kind": "hq", "code": "HQ"},
    "status": "active",
    "will_not_renew": False,
    "renewals": [],
    "terminated_on": None,
    "termination_reason": None,
    "document": None,
    "version": 1,
    "created_at": "2025-05-13T08:30:00Z",
    "updated_at": "2025-05-13T08:30:00Z",
}


class AgreementState(_State):
    """A cooperation agreement: the resource of the API and the `data` of its messages."""

    model_config = ConfigDict(json_schema_extra={"examples": [_AGREEMENT_EXAMPLE]})

    id: uuid.UUID = Field(description="Assigned by the service.")
    external_ref: str | None = Field(max_length=200, description="The signer's own id of the agreement.")
    title: Name = Field(description="Its title.")
    kind: AgreementKind = Field(description="What kind of document it is.")
    partner_org_ids: list[uuid.UUID] = Field(min_length=1, max_length=250, description="The partner organizations.")
    signed_on: date = Field(description="The day it was signed.")
    expires_on: date | None = Field(description="Its last day in force; null when open-ended.")
    fields: list[Code] = Field(max_length=250, description="Fields of cooperation.")
    flagship: bool = Field(description="A flagship project of the plan.")
    signed_by: BodyRef = Field(description="The signing body (it and admins may change the agreement).")
    status: AgreementStatus = Field(description="`active`, `expired` (its expiry passed) or `terminated`.")
    will_not_renew: bool = Field(description="Its signer decided not to renew it: no more renewal notices.")
    renewals: list[Renewal] = Field(max_length=250, description="Every renewal, oldest first.")
    terminated_on: date | None = Field(description="When it was terminated.")
    termination_reason: str | None = Field(max_length=2000, description="Why it was terminated.")
    document: SignedDocument | None = Field(description="The signed PDF scan, when uploaded.")
    version: Version
    created_at: datetime = Field(description="When it was recorded (UTC).")
    updated_at: datetime = Field(description="When it last changed (UTC).")


def _agreement_examples(**changes: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [_AGREEMENT_EXAMPLE | changes]})


class RenewedAgreementState(AgreementState):
    model_config = _agreement_examples(
        expires_on="2035-05-09",
        renewals=[{"renewed_on": "2030-03-01", "previous_expires_on": "2030-05-09", "expires_on": "2035-05-09"}],
        version=2,
    )


class ExpiredAgreementState(AgreementState):
    model_config = _agreement_examples(status="expired", version=2)


class TerminatedAgreementState(AgreementState):
    model_config = _agreement_examples(
        status="terminated", terminated_on="2027-01-15", termination_reason="The partner was dissolved.", version=2
    )


class AgreementNotice(AgreementState):
    """A renewal notice: the agreement's whole state at its unchanged version, plus `notice_days`."""

    model_config = _agreement_examples(expires_on="2025-08-01", notice_days=90)

    notice_days: Literal[180, 90, 30] = Field(description="The notice window: 180, 90 or 30 days before expiry.")


_MEMBERSHIP_EXAMPLE: dict[str, Any] = {
    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7c01",
    "organization_id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a05",
    "member": {"kind": "society", "code": "CMES"},
    "since": "2016-01-01",
    "until": None,
    "status": "active",
    "version": 1,
    "created_at": "2025-05-13T08:30:00Z",
    "updated_at": "2025-05-13T08:30:00Z",
}


class MembershipState(_State):
    """A membership of the association or one of its bodies in an international organization."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MEMBERSHIP_EXAMPLE]})

    id: uuid.UUID = Field(description="Assigned by the service.")
    organization_id: uuid.UUID = Field(description="The international organization.")
    member: BodyRef = Field(description="The member body.")
    since: date = Field(description="Member since.")
    until: date | None = Field(description="Its last day, once ended.")
    status: MembershipStatus = Field(description="`active` or `ended`.")
    version: Version
    created_at: datetime = Field(description="When it was recorded (UTC).")
    updated_at: datetime = Field(description="When it last changed (UTC).")


class EndedMembershipState(MembershipState):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_MEMBERSHIP_EXAMPLE | {"until": "2025-12-31", "status": "ended", "version": 2}]}
    )


def organization_state(org: Organization) -> dict[str, Any]:
    """The published form of an organization, JSON-ready."""
    return {
        "id": org.id,
        "name": org.name,
        "name_zh": org.name_zh,
        "country": org.country,
        "kind": org.kind,
        "ror_id": org.ror_id,
        "website": org.website,
        "status": org.status,
        "merged_into": org.merged_into,
        "created_by": org.created_by.as_dict(),
        "version": org.version,
        "created_at": _iso(org.created_at),
        "updated_at": _iso(org.updated_at),
    }


def agreement_state(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "external_ref": agreement.external_ref,
        "title": agreement.title,
        "kind": agreement.kind,
        "partner_org_ids": list(agreement.partner_org_ids),
        "signed_on": agreement.signed_on.isoformat(),
        "expires_on": agreement.expires_on.isoformat() if agreement.expires_on else None,
        "fields": list(agreement.fields),
        "flagship": agreement.flagship,
        "signed_by": agreement.signed_by.as_dict(),
        "status": agreement.status,
        "will_not_renew": agreement.will_not_renew,
        "renewals": [dict(r) for r in agreement.renewals],
        "terminated_on": agreement.terminated_on.isoformat() if agreement.terminated_on else None,
        "termination_reason": agreement.termination_reason,
        "document": dict(agreement.document) if agreement.document else None,
        "version": agreement.version,
        "created_at": _iso(agreement.created_at),
        "updated_at": _iso(agreement.updated_at),
    }


def membership_state(membership: Membership) -> dict[str, Any]:
    return {
        "id": membership.id,
        "organization_id": membership.organization_id,
        "member": membership.member.as_dict(),
        "since": membership.since.isoformat(),
        "until": membership.until.isoformat() if membership.until else None,
        "status": membership.status,
        "version": membership.version,
        "created_at": _iso(membership.created_at),
        "updated_at": _iso(membership.updated_at),
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


PUBLISHED_EVENTS = [
    PublishedEvent(ORGANIZATION_REGISTERED, OrganizationState, "A partner organization was registered (version 1)."),
    PublishedEvent(ORGANIZATION_UPDATED, OrganizationState, "A partner organization changed; its whole new state."),
    PublishedEvent(
        ORGANIZATION_MERGED,
        MergedOrganizationState,
        "A duplicate organization was merged into `merged_into`: it counts nowhere from now on (its agreements "
        "follow as `exchange.agreement.updated`).",
    ),
    PublishedEvent(AGREEMENT_SIGNED, AgreementState, "An agreement was recorded (version 1, `active`)."),
    PublishedEvent(
        AGREEMENT_UPDATED, AgreementState, "An agreement changed (fields, partners after a merge, `will_not_renew`)."
    ),
    PublishedEvent(AGREEMENT_RENEWED, RenewedAgreementState, "An agreement was renewed: a later `expires_on`."),
    PublishedEvent(
        AGREEMENT_EXPIRING,
        AgreementNotice,
        "A renewal notice, 180, 90 or 30 days before expiry, once per agreement and term: the agreement's whole "
        "state at its unchanged version plus `notice_days`.",
    ),
    PublishedEvent(AGREEMENT_EXPIRED, ExpiredAgreementState, "An agreement's expiry passed: `status` = `expired`."),
    PublishedEvent(AGREEMENT_TERMINATED, TerminatedAgreementState, "An agreement was terminated, with its reason."),
    PublishedEvent(MEMBERSHIP_RECORDED, MembershipState, "A body's membership in an international organization."),
    PublishedEvent(MEMBERSHIP_ENDED, EndedMembershipState, "A membership ended: `status` = `ended`, `until` set."),
]


def asyncapi(topic: str = TOPIC) -> dict[str, Any]:
    """The AsyncAPI document of what this service publishes, with its vocabulary (`x-vocabulary`: the
    kinds and statuses with their labels) for consumers to label these values from."""
    document = asyncapi_document(title="exchange-tracker partners", source=SOURCE, topic=topic, events=PUBLISHED_EVENTS)
    document["info"]["x-vocabulary"] = VOCABULARY
    return document
