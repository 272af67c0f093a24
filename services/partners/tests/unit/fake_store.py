"""An in-memory `PartnersStore` for the unit tests: the port's behaviour (unique keys among active rows,
rollback unless committed, outbox and audit in the transaction) without a database, in microseconds."""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from common.audit import AuditEntry
from common.auth import Principal
from partners.application.ports import AgreementQuery, DuplicateKey, MembershipQuery, OrganizationQuery
from partners.domain.agreement import Agreement
from partners.domain.base import Body
from partners.domain.membership import Membership
from partners.domain.names import name_key
from partners.domain.organization import Organization


@dataclass
class Published:
    type: str
    subject: str
    data: dict[str, Any]


@dataclass
class State:
    organizations: dict[str, Organization] = field(default_factory=dict)
    agreements: dict[str, Agreement] = field(default_factory=dict)
    memberships: dict[str, Membership] = field(default_factory=dict)
    outbox: list[Published] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


def _page(items: Sequence[Any], after: str | None, limit: int) -> list[Any]:
    return sorted((i for i in items if after is None or i.id > after), key=lambda i: i.id)[:limit]


class FakeTransaction:
    """Works on a copy of the store's state; `commit()` makes the copy the state."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.state = copy.deepcopy(store.state)
        self.scheduler_claimed = store.scheduler_free

    # -- organizations ------------------------------------------------------------------------------
    async def organization(self, org_id: str, *, lock: bool = False) -> Organization | None:
        return copy.deepcopy(self.state.organizations.get(org_id))

    async def duplicate_of(self, org: Organization) -> str | None:
        key, zh_key = org.name_keys
        for other in sorted(self.state.organizations.values(), key=lambda o: o.id):
            if other.id == org.id or other.status != "active":
                continue
            other_key, other_zh_key = other.name_keys
            same_country = (other.country or "") == (org.country or "")
            if (
                (org.ror_id and other.ror_id == org.ror_id)
                or (same_country and other_key == key)
                or (same_country and zh_key is not None and other_zh_key == zh_key)
            ):
                return other.id
        return None

    async def existing_organizations(self, ids: Sequence[str]) -> dict[str, str]:
        return {i: self.state.organizations[i].status for i in ids if i in self.state.organizations}

    def _check_unique_organization(self, org: Organization) -> None:
        if org.status != "active":
            return
        key, zh_key = org.name_keys
        for other in self.state.organizations.values():
            if other.id == org.id or other.status != "active":
                continue
            other_key, other_zh_key = other.name_keys
            same_country = (other.country or "") == (org.country or "")
            if (
                (org.ror_id is not None and other.ror_id == org.ror_id)
                or (same_country and other_key == key)
                or (same_country and zh_key is not None and other_zh_key == zh_key)
            ):
                raise DuplicateKey("organizations")

    async def add_organization(self, org: Organization) -> None:
        self.store.before_write("organization")
        self._check_unique_organization(org)
        self.state.organizations[org.id] = copy.deepcopy(org)

    async def save_organization(self, org: Organization) -> None:
        self.store.before_write("organization")
        self._check_unique_organization(org)
        self.state.organizations[org.id] = copy.deepcopy(org)

    async def organizations(self, query: OrganizationQuery, *, after: str | None, limit: int) -> list[Organization]:
        def matches(o: Organization) -> bool:
            if query.status is not None and o.status != query.status:
                return False
            if query.country is not None and o.country != query.country:
                return False
            if query.countries is not None and not (
                o.country in query.countries or (query.international and o.country is None)
            ):
                return False
            if query.kind is not None and o.kind != query.kind:
                return False
            if query.search:
                words = name_key(query.search)
                key, zh_key = o.name_keys
                return words in key or words in (zh_key or "") or query.search.strip() in (o.name_zh or "")
            return True

        return copy.deepcopy(_page([o for o in self.state.organizations.values() if matches(o)], after, limit))

    # -- agreements ---------------------------------------------------------------------------------
    async def agreement(self, agreement_id: str, *, lock: bool = False) -> Agreement | None:
        return copy.deepcopy(self.state.agreements.get(agreement_id))

    async def agreement_by_ref(self, signer: Body, external_ref: str) -> Agreement | None:
        for a in self.state.agreements.values():
            if a.signed_by == signer and a.external_ref == external_ref:
                return copy.deepcopy(a)
        return None

    async def add_agreement(self, agreement: Agreement) -> None:
        self.store.before_write("agreement")
        if agreement.external_ref is not None and await self.agreement_by_ref(
            agreement.signed_by, agreement.external_ref
        ):
            raise DuplicateKey("agreements")
        self.state.agreements[agreement.id] = copy.deepcopy(agreement)

    async def save_agreement(self, agreement: Agreement) -> None:
        self.state.agreements[agreement.id] = copy.deepcopy(agreement)

    async def agreements(self, query: AgreementQuery, *, after: str | None, limit: int) -> list[Agreement]:
        def matches(a: Agreement) -> bool:
            if query.status is not None and a.status != query.status:
                return False
            if query.kind is not None and a.kind != query.kind:
                return False
            if query.signed_by is not None and a.signed_by != query.signed_by:
                return False
            if query.partner_org_id is not None and query.partner_org_id not in a.partner_org_ids:
                return False
            if query.expiring_from is not None and query.expiring_to is not None:
                return (
                    a.status == "active"
                    and a.expires_on is not None
                    and query.expiring_from <= a.expires_on <= query.expiring_to
                )
            return True

        return copy.deepcopy(_page([a for a in self.state.agreements.values() if matches(a)], after, limit))

    async def agreements_with_partner(self, org_id: str) -> list[Agreement]:
        found = [a for a in self.state.agreements.values() if org_id in a.partner_org_ids]
        return copy.deepcopy(sorted(found, key=lambda a: a.id))

    async def agreements_due(self, today: date, limit: int) -> list[Agreement]:
        due = [
            a
            for a in self.state.agreements.values()
            if a.status == "active" and a.next_check_on is not None and a.next_check_on <= today
        ]
        due.sort(key=lambda a: (a.next_check_on, a.id))
        return copy.deepcopy(due[:limit])

    # -- memberships --------------------------------------------------------------------------------
    async def membership(self, membership_id: str, *, lock: bool = False) -> Membership | None:
        return copy.deepcopy(self.state.memberships.get(membership_id))

    async def active_membership(self, organization_id: str, member: Body) -> Membership | None:
        for m in self.state.memberships.values():
            if m.organization_id == organization_id and m.member == member and m.status == "active":
                return copy.deepcopy(m)
        return None

    async def memberships_of(self, organization_id: str) -> list[Membership]:
        found = [m for m in self.state.memberships.values() if m.organization_id == organization_id]
        return copy.deepcopy(sorted(found, key=lambda m: m.id))

    async def add_membership(self, membership: Membership) -> None:
        self.store.before_write("membership")
        if await self.active_membership(membership.organization_id, membership.member):
            raise DuplicateKey("memberships")
        self.state.memberships[membership.id] = copy.deepcopy(membership)

    async def save_membership(self, membership: Membership) -> None:
        self.state.memberships[membership.id] = copy.deepcopy(membership)

    async def memberships(self, query: MembershipQuery, *, after: str | None, limit: int) -> list[Membership]:
        def matches(m: Membership) -> bool:
            return (
                (query.organization_id is None or m.organization_id == query.organization_id)
                and (query.member is None or m.member == query.member)
                and (query.status is None or m.status == query.status)
            )

        return copy.deepcopy(_page([m for m in self.state.memberships.values() if matches(m)], after, limit))

    # -- scheduler, outbox, audit -------------------------------------------------------------------
    async def claim_scheduler(self) -> bool:
        return self.scheduler_claimed

    async def publish(self, event_type: str, subject: str, data: dict[str, Any]) -> None:
        self.state.outbox.append(Published(event_type, subject, copy.deepcopy(data)))

    async def audit(
        self, actor: Principal, action: str, entity: str, entity_id: str, changes: dict[str, dict[str, Any]]
    ) -> None:
        entry = AuditEntry(
            id=len(self.state.audit) + 1,
            at=datetime.now(UTC),
            actor={"sub": actor.sub, "kind": actor.org_kind, "code": actor.org_code},
            action=action,
            entity=entity,
            entity_id=entity_id,
            changes=copy.deepcopy(changes),
        )
        self.state.audit.append(entry)

    async def history(self, entity: str, entity_id: str, *, after: int, limit: int) -> Sequence[AuditEntry]:
        entries = [e for e in self.state.audit if e.entity == entity and e.entity_id == entity_id and e.id > after]
        return entries[:limit]

    async def commit(self) -> None:
        self.store.state = self.state
        self.store.commits += 1


class FakeStore:
    """`state` is what is committed. `taken_concurrently` makes the next write of an entity fail as if
    another transaction had just committed a row with the same unique key (the given callback commits it)."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0
        self.scheduler_free = True
        self.taken_concurrently: dict[str, list[Any]] = {}

    def before_write(self, entity: str) -> None:
        pending = self.taken_concurrently.get(entity)
        if pending:
            pending.pop(0)(self.state)
            raise DuplicateKey(entity)

    @property
    def published(self) -> list[Published]:
        return self.state.outbox

    def types(self) -> list[str]:
        return [p.type for p in self.state.outbox]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTransaction]:
        yield FakeTransaction(self)


class FakeDocuments:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, sha256: str, data: bytes) -> None:
        self.files[sha256] = data

    async def get(self, sha256: str) -> bytes | None:
        return self.files.get(sha256)


_ids = itertools.count(1)


def sequential_id() -> str:
    """Ids that sort in creation order, as uuid7 ones do."""
    return f"00000000-0000-7000-8000-{next(_ids):012d}"
