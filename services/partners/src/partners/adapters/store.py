"""The partners storage port on SQLAlchemy Core, for PostgreSQL and SQLite alike: the SQL is the same but
for the scheduler's claim (an advisory lock on PostgreSQL, a file lock beside an SQLite database) and
row locks (SQLite's BEGIN IMMEDIATE serialises writers instead)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from common.audit import AuditEntry, audit_history, record_audit
from common.auth import Principal
from common.file_lock import SqliteFileLock
from common.outbox import MAX_MESSAGE_BYTES, outbox_message, stage
from sqlalchemy import Select, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from partners.adapters.tables import agreement_partners, agreements, audit_log, memberships, organizations, outbox
from partners.application.ports import AgreementQuery, DuplicateKey, MembershipQuery, OrganizationQuery
from partners.contracts.v1 import SOURCE
from partners.domain.agreement import Agreement
from partners.domain.base import Body
from partners.domain.membership import Membership
from partners.domain.names import name_key
from partners.domain.organization import Organization

log = logging.getLogger(__name__)
SCHEDULER_LOCK_KEY = 0x7061_7274_6E65_7273 & 0x7FFF_FFFF_FFFF_FFFF  # "partners"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite hands back naive values


def _id(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _organization(row: Mapping[str, Any]) -> Organization:
    return Organization(
        id=str(row["id"]),
        name=row["name"],
        name_zh=row["name_zh"],
        country=row["country"],
        kind=row["kind"],
        ror_id=row["ror_id"],
        website=row["website"],
        created_by=Body(row["created_by_kind"], row["created_by_code"]),
        status=row["status"],
        merged_into=str(row["merged_into"]) if row["merged_into"] else None,
        version=row["version"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _organization_row(org: Organization) -> dict[str, Any]:
    key, zh_key = org.name_keys
    return {
        "id": _id(org.id),
        "name": org.name,
        "name_zh": org.name_zh,
        "name_key": key,
        "name_zh_key": zh_key,
        "country_key": org.country or "",
        "country": org.country,
        "kind": org.kind,
        "ror_id": org.ror_id,
        "website": org.website,
        "status": org.status,
        "merged_into": _id(org.merged_into) if org.merged_into else None,
        "created_by_kind": org.created_by.kind,
        "created_by_code": org.created_by.code,
        "version": org.version,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    }


def _agreement(row: Mapping[str, Any]) -> Agreement:
    return Agreement(
        id=str(row["id"]),
        external_ref=row["external_ref"],
        signed_by=Body(row["signer_kind"], row["signer_code"]),
        title=row["title"],
        kind=row["kind"],
        partner_org_ids=list(row["partner_org_ids"]),
        signed_on=row["signed_on"],
        expires_on=row["expires_on"],
        fields=list(row["fields"]),
        flagship=row["flagship"],
        status=row["status"],
        will_not_renew=row["will_not_renew"],
        renewals=list(row["renewals"]),
        terminated_on=row["terminated_on"],
        termination_reason=row["termination_reason"],
        document=row["document"],
        term=row["term"],
        notices=set(row["notices"]),
        version=row["version"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _agreement_row(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": _id(agreement.id),
        "external_ref": agreement.external_ref,
        "signer_kind": agreement.signed_by.kind,
        "signer_code": agreement.signed_by.code,
        "title": agreement.title,
        "kind": agreement.kind,
        "partner_org_ids": list(agreement.partner_org_ids),
        "signed_on": agreement.signed_on,
        "expires_on": agreement.expires_on,
        "fields": list(agreement.fields),
        "flagship": agreement.flagship,
        "status": agreement.status,
        "will_not_renew": agreement.will_not_renew,
        "renewals": list(agreement.renewals),
        "terminated_on": agreement.terminated_on,
        "termination_reason": agreement.termination_reason,
        "document": agreement.document,
        "term": agreement.term,
        "notices": sorted(agreement.notices),
        "next_check_on": agreement.next_check_on,
        "version": agreement.version,
        "created_at": agreement.created_at,
        "updated_at": agreement.updated_at,
    }


def _membership(row: Mapping[str, Any]) -> Membership:
    return Membership(
        id=str(row["id"]),
        organization_id=str(row["organization_id"]),
        member=Body(row["member_kind"], row["member_code"]),
        since=row["since"],
        until=row["until"],
        status=row["status"],
        version=row["version"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _membership_row(membership: Membership) -> dict[str, Any]:
    return {
        "id": _id(membership.id),
        "organization_id": _id(membership.organization_id),
        "member_kind": membership.member.kind,
        "member_code": membership.member.code,
        "since": membership.since,
        "until": membership.until,
        "status": membership.status,
        "version": membership.version,
        "created_at": membership.created_at,
        "updated_at": membership.updated_at,
    }


class SqlTransaction:
    """One database transaction of the store (see `partners.application.ports.Transaction`)."""

    def __init__(self, session: AsyncSession, store: SqlStore) -> None:
        self.session = session
        self.store = store

    async def _rows(self, statement: Select[Any]) -> list[Mapping[str, Any]]:
        return list((await self.session.execute(statement)).mappings())

    async def _write(self, statement: Any, rows: Any = None) -> None:
        try:
            await self.session.execute(statement, rows) if rows is not None else await self.session.execute(statement)
        except IntegrityError as exc:
            raise DuplicateKey(str(exc.orig.__class__.__name__)) from exc

    # -- organizations ------------------------------------------------------------------------------
    async def organization(self, org_id: str, *, lock: bool = False) -> Organization | None:
        query = select(organizations).where(organizations.c.id == _id(org_id))
        rows = await self._rows(query.with_for_update() if lock else query)
        return _organization(rows[0]) if rows else None

    async def duplicate_of(self, org: Organization) -> str | None:
        c = organizations.c
        key, zh_key = org.name_keys
        same = [and_(c.name_key == key, c.country_key == (org.country or ""))]
        if zh_key:
            same.append(and_(c.name_zh_key == zh_key, c.country_key == (org.country or "")))
        if org.ror_id:
            same.append(c.ror_id == org.ror_id)
        found = await self.session.scalar(
            select(c.id).where(c.status == "active", c.id != _id(org.id), or_(*same)).order_by(c.id).limit(1)
        )
        return str(found) if found is not None else None

    async def existing_organizations(self, ids: Sequence[str]) -> dict[str, str]:
        wanted = {_id(i) for i in ids}
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(organizations.c.id, organizations.c.status).where(organizations.c.id.in_(wanted))
        )
        return {str(org_id): status for org_id, status in rows}

    async def add_organization(self, org: Organization) -> None:
        await self._write(insert(organizations).values(_organization_row(org)))

    async def save_organization(self, org: Organization) -> None:
        row = _organization_row(org)
        await self._write(update(organizations).where(organizations.c.id == row.pop("id")).values(row))

    async def organizations(self, query: OrganizationQuery, *, after: str | None, limit: int) -> list[Organization]:
        c = organizations.c
        conditions: list[Any] = []
        if after is not None:
            conditions.append(c.id > _id(after))
        if query.status is not None:
            conditions.append(c.status == query.status)
        if query.country is not None:
            conditions.append(c.country == query.country)
        if query.countries is not None:
            region = c.country.in_(sorted(query.countries))
            conditions.append(or_(region, c.country.is_(None)) if query.international else region)
        if query.kind is not None:
            conditions.append(c.kind == query.kind)
        if query.search:
            words = name_key(query.search)
            conditions.append(
                or_(
                    c.name_key.contains(words, autoescape=True),
                    func.coalesce(c.name_zh_key, "").contains(words, autoescape=True),
                    func.coalesce(c.name_zh, "").contains(query.search.strip(), autoescape=True),
                )
            )
        rows = await self._rows(select(organizations).where(*conditions).order_by(c.id).limit(limit))
        return [_organization(r) for r in rows]

    # -- agreements ---------------------------------------------------------------------------------
    async def agreement(self, agreement_id: str, *, lock: bool = False) -> Agreement | None:
        query = select(agreements).where(agreements.c.id == _id(agreement_id))
        rows = await self._rows(query.with_for_update() if lock else query)
        return _agreement(rows[0]) if rows else None

    async def agreement_by_ref(self, signer: Body, external_ref: str) -> Agreement | None:
        c = agreements.c
        rows = await self._rows(
            select(agreements).where(
                c.signer_kind == signer.kind, c.signer_code == signer.code, c.external_ref == external_ref
            )
        )
        return _agreement(rows[0]) if rows else None

    async def _link_partners(self, agreement: Agreement) -> None:
        await self.session.execute(
            delete(agreement_partners).where(agreement_partners.c.agreement_id == _id(agreement.id))
        )
        await self.session.execute(
            insert(agreement_partners),
            [{"agreement_id": _id(agreement.id), "org_id": _id(o)} for o in dict.fromkeys(agreement.partner_org_ids)],
        )

    async def add_agreement(self, agreement: Agreement) -> None:
        await self._write(insert(agreements).values(_agreement_row(agreement)))
        await self._link_partners(agreement)

    async def save_agreement(self, agreement: Agreement) -> None:
        row = _agreement_row(agreement)
        await self._write(update(agreements).where(agreements.c.id == row.pop("id")).values(row))
        await self._link_partners(agreement)

    async def agreements(self, query: AgreementQuery, *, after: str | None, limit: int) -> list[Agreement]:
        c = agreements.c
        conditions: list[Any] = []
        if after is not None:
            conditions.append(c.id > _id(after))
        if query.status is not None:
            conditions.append(c.status == query.status)
        if query.kind is not None:
            conditions.append(c.kind == query.kind)
        if query.signed_by is not None:
            conditions.extend([c.signer_kind == query.signed_by.kind, c.signer_code == query.signed_by.code])
        if query.partner_org_id is not None:
            p = agreement_partners.c
            conditions.append(exists().where(p.agreement_id == c.id, p.org_id == _id(query.partner_org_id)))
        if query.expiring_from is not None and query.expiring_to is not None:
            conditions.extend(
                [c.status == "active", c.expires_on >= query.expiring_from, c.expires_on <= query.expiring_to]
            )
        rows = await self._rows(select(agreements).where(*conditions).order_by(c.id).limit(limit))
        return [_agreement(r) for r in rows]

    async def agreements_with_partner(self, org_id: str) -> list[Agreement]:
        p = agreement_partners.c
        query = (
            select(agreements)
            .where(exists().where(p.agreement_id == agreements.c.id, p.org_id == _id(org_id)))
            .order_by(agreements.c.id)
            .with_for_update()
        )
        return [_agreement(r) for r in await self._rows(query)]

    async def agreements_due(self, today: date, limit: int) -> list[Agreement]:
        c = agreements.c
        query = (
            select(agreements)
            .where(c.status == "active", c.next_check_on <= today)
            .order_by(c.next_check_on, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_agreement(r) for r in await self._rows(query)]

    # -- memberships --------------------------------------------------------------------------------
    async def membership(self, membership_id: str, *, lock: bool = False) -> Membership | None:
        query = select(memberships).where(memberships.c.id == _id(membership_id))
        rows = await self._rows(query.with_for_update() if lock else query)
        return _membership(rows[0]) if rows else None

    async def active_membership(self, organization_id: str, member: Body) -> Membership | None:
        c = memberships.c
        rows = await self._rows(
            select(memberships).where(
                c.organization_id == _id(organization_id),
                c.member_kind == member.kind,
                c.member_code == member.code,
                c.status == "active",
            )
        )
        return _membership(rows[0]) if rows else None

    async def memberships_of(self, organization_id: str) -> list[Membership]:
        query = (
            select(memberships)
            .where(memberships.c.organization_id == _id(organization_id))
            .order_by(memberships.c.id)
            .with_for_update()
        )
        return [_membership(r) for r in await self._rows(query)]

    async def add_membership(self, membership: Membership) -> None:
        await self._write(insert(memberships).values(_membership_row(membership)))

    async def save_membership(self, membership: Membership) -> None:
        row = _membership_row(membership)
        await self._write(update(memberships).where(memberships.c.id == row.pop("id")).values(row))

    async def memberships(self, query: MembershipQuery, *, after: str | None, limit: int) -> list[Membership]:
        c = memberships.c
        conditions: list[Any] = []
        if after is not None:
            conditions.append(c.id > _id(after))
        if query.organization_id is not None:
            conditions.append(c.organization_id == _id(query.organization_id))
        if query.member is not None:
            conditions.extend([c.member_kind == query.member.kind, c.member_code == query.member.code])
        if query.status is not None:
            conditions.append(c.status == query.status)
        rows = await self._rows(select(memberships).where(*conditions).order_by(c.id).limit(limit))
        return [_membership(r) for r in rows]

    # -- scheduler, outbox, audit -------------------------------------------------------------------
    async def claim_scheduler(self) -> bool:
        if self.session.get_bind().dialect.name == "postgresql":
            # Held until this transaction ends: one replica's pass at a time, the others skip theirs.
            return bool(await self.session.scalar(select(func.pg_try_advisory_xact_lock(SCHEDULER_LOCK_KEY))))
        return self.store.hold_scheduler_file_lock()

    async def publish(self, event_type: str, subject: str, data: dict[str, Any]) -> None:
        message = outbox_message(
            source=SOURCE,
            type=event_type,
            subject=subject,
            data=data,
            max_message_bytes=self.store.max_message_bytes,
        )
        await stage(self.session, outbox, [message], self.store.topic)

    async def audit(
        self, actor: Principal, action: str, entity: str, entity_id: str, changes: dict[str, dict[str, Any]]
    ) -> None:
        await record_audit(
            self.session, audit_log, actor=actor, action=action, entity=entity, entity_id=entity_id, changes=changes
        )

    async def history(self, entity: str, entity_id: str, *, after: int, limit: int) -> Sequence[AuditEntry]:
        return await audit_history(
            self.session, audit_log, entity=entity, entity_id=entity_id, after_id=after, limit=limit
        )

    async def commit(self) -> None:
        await self.session.commit()


class SqlStore:
    """The store on one engine's sessions; `topic` is where its messages go (prefixed)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], topic: str, *, max_message_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self.sessions = sessions
        self.topic = topic
        self.max_message_bytes = max_message_bytes
        self._scheduler_lock = SqliteFileLock("scheduler-lock", "the agreement scheduler")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        async with self.sessions() as session:
            yield SqlTransaction(session, self)  # leaving without commit() rolls back

    def hold_scheduler_file_lock(self) -> bool:
        """SQLite: one scheduler per database file, for as long as this store lives (the first store to take
        it keeps it; another takes over when its process ends)."""
        return self._scheduler_lock.hold(self.sessions.kw["bind"].url.database)

    def close(self) -> None:
        self._scheduler_lock.release()
