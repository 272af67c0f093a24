"""What the use cases need from storage: one transaction at a time, with its queries, its writes, the
outbox and the audit record. `adapters/` implements it for PostgreSQL and SQLite; tests/unit fakes it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from common.audit import AuditEntry
from common.auth import Principal

from partners.domain.agreement import Agreement
from partners.domain.base import Body
from partners.domain.membership import Membership
from partners.domain.organization import Organization


class DuplicateKey(Exception):
    """A unique key (ROR id, normalised name and country, external_ref) was taken concurrently."""


@dataclass(frozen=True)
class OrganizationQuery:
    country: str | None = None
    countries: frozenset[str] | None = None  # a region's countries
    international: bool = False  # the region includes international organizations (country null)
    kind: str | None = None
    status: str | None = "active"
    search: str | None = None


@dataclass(frozen=True)
class AgreementQuery:
    status: str | None = None
    kind: str | None = None
    signed_by: Body | None = None
    partner_org_id: str | None = None
    expiring_from: date | None = None  # active, expires_on in [from, to]
    expiring_to: date | None = None


@dataclass(frozen=True)
class MembershipQuery:
    organization_id: str | None = None
    member: Body | None = None
    status: str | None = None


class Transaction(Protocol):
    async def organization(self, org_id: str, *, lock: bool = False) -> Organization | None: ...
    async def duplicate_of(self, org: Organization) -> str | None:
        """The id of another active organization with the same ROR id, or the same normalised `name` or
        `name_zh` and country."""
        ...

    async def existing_organizations(self, ids: Sequence[str]) -> dict[str, str]:
        """{id: status} of those of `ids` that exist."""
        ...

    async def add_organization(self, org: Organization) -> None: ...
    async def save_organization(self, org: Organization) -> None: ...
    async def organizations(self, query: OrganizationQuery, *, after: str | None, limit: int) -> list[Organization]: ...

    async def agreement(self, agreement_id: str, *, lock: bool = False) -> Agreement | None: ...
    async def agreement_by_ref(self, signer: Body, external_ref: str) -> Agreement | None: ...
    async def add_agreement(self, agreement: Agreement) -> None: ...
    async def save_agreement(self, agreement: Agreement) -> None: ...
    async def agreements(self, query: AgreementQuery, *, after: str | None, limit: int) -> list[Agreement]: ...
    async def agreements_with_partner(self, org_id: str) -> list[Agreement]:
        """Locked for update: a merge rewrites them."""
        ...

    async def agreements_due(self, today: date, limit: int) -> list[Agreement]:
        """Agreements whose `next_check_on` has come (a notice or the expiry due), locked, skipping rows
        another transaction holds."""
        ...

    async def membership(self, membership_id: str, *, lock: bool = False) -> Membership | None: ...
    async def active_membership(self, organization_id: str, member: Body) -> Membership | None: ...
    async def memberships_of(self, organization_id: str) -> list[Membership]: ...
    async def add_membership(self, membership: Membership) -> None: ...
    async def save_membership(self, membership: Membership) -> None: ...
    async def memberships(self, query: MembershipQuery, *, after: str | None, limit: int) -> list[Membership]: ...

    async def claim_scheduler(self) -> bool:
        """True when this transaction may run the scheduler's pass (one replica at a time)."""
        ...

    async def publish(self, event_type: str, subject: str, data: dict[str, Any]) -> None: ...
    async def audit(
        self, actor: Principal, action: str, entity: str, entity_id: str, changes: dict[str, dict[str, Any]]
    ) -> None: ...
    async def history(self, entity: str, entity_id: str, *, after: int, limit: int) -> Sequence[AuditEntry]: ...
    async def commit(self) -> None: ...


class PartnersStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that rolls back unless `commit()` was called."""
        ...


class DocumentStorage(Protocol):
    """Where signed PDF scans are kept, by their SHA-256 (content-addressed: a failed commit leaves an
    unreferenced file, never a changed one)."""

    async def put(self, sha256: str, data: bytes) -> None: ...
    async def get(self, sha256: str) -> bytes | None: ...
