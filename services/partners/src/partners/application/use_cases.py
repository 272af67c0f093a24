"""The partners use cases: each runs in one transaction of the store, publishes what it changed through
the outbox in that transaction, records it in the audit history, and is the only place that commits."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from common.audit import AuditEntry, field_changes
from common.auth import Principal
from common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Problem, Unprocessable
from common.ids import uuid7
from common.pagination import decode_cursor, encode_cursor

from partners.application.ports import (
    AgreementQuery,
    DocumentStorage,
    DuplicateKey,
    MembershipQuery,
    OrganizationQuery,
    PartnersStore,
    Transaction,
)
from partners.contracts import v1
from partners.domain.agreement import Agreement
from partners.domain.base import Actor, Body, DomainError, InvalidValue, NotPermitted, WrongState
from partners.domain.membership import Membership
from partners.domain.organization import Organization

SCHEDULER = Principal(sub="partners-scheduler", org_kind="hq", org_code="HQ", scopes=frozenset())
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
SCHEDULER_BATCH = 200
# A unique key taken concurrently: try the whole write again this often before answering 409.
DUPLICATE_KEY_ATTEMPTS = 3
T = TypeVar("T")
_NOT_AUDITED = ("version", "updated_at", "created_at")


def actor_of(principal: Principal) -> Actor:
    return Actor(Body(principal.org_kind, principal.org_code), principal.is_admin)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class SchedulerPass:
    expired: int = 0
    notices: int = 0
    ran: bool = True  # False: another replica holds the scheduler


def _problem(exc: DomainError) -> Problem:
    if isinstance(exc, NotPermitted):
        return Forbidden(exc.message)
    if isinstance(exc, WrongState):
        return Conflict(exc.message)
    loc = ["body", exc.field] if exc.field else ["body"]
    return Unprocessable(
        f"{exc.field}: {exc.message}" if exc.field else exc.message, errors=[{"loc": loc, "msg": exc.message}]
    )


def _check_version(version: int, if_match: frozenset[int] | None, what: str) -> None:
    if if_match is not None and version not in if_match:
        raise PreconditionFailed(f"The {what} is at version {version}; read it again.", current_version=version)


def _audited(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _NOT_AUDITED}


async def _announce(
    tx: Transaction,
    principal: Principal,
    action: str,
    event_type: str,
    before: dict[str, Any] | None,
    state: dict[str, Any],
) -> None:
    """Publish an aggregate's new state and record the change in the audit history (same transaction)."""
    await tx.publish(event_type, state["id"], state)
    entity = event_type.split(".")[1]
    changes = field_changes(_audited(before) if before is not None else None, _audited(state))
    await tx.audit(principal, action, entity, state["id"], changes)


def _cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return str(decode_cursor(cursor))
    except ValueError as exc:
        raise Unprocessable("Invalid cursor.", errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]) from exc


def _page(items: list[dict[str, Any]], limit: int) -> Page:
    if len(items) > limit:
        return Page(items[:limit], encode_cursor(items[limit - 1]["id"]))
    return Page(items, None)


async def _again_on_duplicate_key(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` (one whole transaction) again when a unique key it wrote was taken by a transaction
    that committed after its check: the next attempt's own check sees that row and answers 409 naming it,
    or finds the key free again (the winner was merged or renamed meanwhile) and goes through."""
    for _ in range(DUPLICATE_KEY_ATTEMPTS - 1):
        with contextlib.suppress(DuplicateKey):
            return await attempt()
    try:
        return await attempt()
    except DuplicateKey as exc:
        raise Conflict("The same key was written concurrently several times over; send the request again.") from exc


class PartnersService:
    def __init__(
        self,
        store: PartnersStore,
        documents: DocumentStorage,
        *,
        today: Callable[[], date],
        new_id: Callable[[], str] = lambda: str(uuid7()),
    ) -> None:
        self.store = store
        self.documents = documents
        self.today = today
        self.new_id = new_id

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        """The store's transaction, with the domain's refusals turned into problem answers."""
        try:
            async with self.store.transaction() as tx:
                yield tx
        except DomainError as exc:
            raise _problem(exc) from exc

    # -- organizations ----------------------------------------------------------------------------
    async def register_organization(self, principal: Principal, content: dict[str, Any]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            async with self._transaction() as tx:
                org = Organization.register(id=self.new_id(), by=actor_of(principal).body, **content)
                await self._refuse_duplicate(tx, org)
                await tx.add_organization(org)
                state = v1.organization_state(org)
                await _announce(tx, principal, "register", v1.ORGANIZATION_REGISTERED, None, state)
                await tx.commit()
                return state

        return await _again_on_duplicate_key(attempt)

    async def _refuse_duplicate(self, tx: Transaction, org: Organization) -> None:
        existing = await tx.duplicate_of(org)
        if existing is not None:
            raise Conflict(
                f"Organization {existing} has the same ROR id, or the same name and country.", existing_id=existing
            )

    async def get_organization(self, org_id: str) -> dict[str, Any]:
        async with self._transaction() as tx:
            return v1.organization_state(await self._organization(tx, org_id))

    async def _organization(self, tx: Transaction, org_id: str, *, lock: bool = False) -> Organization:
        org = await tx.organization(org_id, lock=lock)
        if org is None:
            raise NotFound(f"There is no organization {org_id}.")
        return org

    async def update_organization(
        self, principal: Principal, org_id: str, changes: dict[str, Any], if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            async with self._transaction() as tx:
                org = await self._organization(tx, org_id, lock=True)
                _check_version(org.version, if_match, "organization")
                before = v1.organization_state(org)
                if not org.update(actor_of(principal), changes):
                    return before
                await self._refuse_duplicate(tx, org)
                await tx.save_organization(org)
                state = v1.organization_state(org)
                await _announce(tx, principal, "update", v1.ORGANIZATION_UPDATED, before, state)
                await tx.commit()
                return state

        return await _again_on_duplicate_key(attempt)

    async def list_organizations(self, query: OrganizationQuery, *, limit: int, cursor: str | None) -> Page:
        async with self._transaction() as tx:
            orgs = await tx.organizations(query, after=_cursor(cursor), limit=limit + 1)
        return _page([v1.organization_state(o) for o in orgs], limit)

    async def merge_organizations(self, principal: Principal, survivor_id: str, duplicate_id: str) -> dict[str, Any]:
        """Merge `duplicate_id` into `survivor_id`: its agreements and memberships move to the survivor."""
        if not principal.is_admin:
            raise Forbidden("Only an admin may merge organizations.")
        actor = actor_of(principal)
        async with self._transaction() as tx:
            # Locked in id order, so two merges of the same pair cannot deadlock.
            for org_id in sorted({survivor_id, duplicate_id}):
                await self._organization(tx, org_id, lock=True)
            survivor = await self._organization(tx, survivor_id)
            duplicate = await self._organization(tx, duplicate_id)
            before = v1.organization_state(duplicate)
            duplicate.merge_into(actor, survivor)
            await tx.save_organization(duplicate)
            state = v1.organization_state(duplicate)
            await _announce(tx, principal, "merge", v1.ORGANIZATION_MERGED, before, state)
            moved_agreements = 0
            for agreement in await tx.agreements_with_partner(duplicate.id):
                old = v1.agreement_state(agreement)
                if agreement.replace_partner(duplicate.id, survivor.id):
                    await tx.save_agreement(agreement)
                    new = v1.agreement_state(agreement)
                    await _announce(tx, principal, "merge", v1.AGREEMENT_UPDATED, old, new)
                    moved_agreements += 1
            moved_memberships = 0
            for membership in await tx.memberships_of(duplicate.id):
                old = v1.membership_state(membership)
                membership.move_to(survivor.id)
                await tx.save_membership(membership)
                new = v1.membership_state(membership)
                await _announce(tx, principal, "merge", v1.MEMBERSHIP_RECORDED, old, new)
                moved_memberships += 1
            await tx.commit()
            return {
                "survivor": v1.organization_state(survivor),
                "merged": state,
                "agreements_moved": moved_agreements,
                "memberships_moved": moved_memberships,
            }

    # -- agreements -------------------------------------------------------------------------------
    async def _check_partners(self, tx: Transaction, ids: Sequence[str]) -> None:
        found = await tx.existing_organizations(ids)
        errors: list[dict[str, Any]] = []
        for index, org_id in enumerate(ids):
            status = found.get(org_id)
            if status is None:
                errors.append({"loc": ["body", "partner_org_ids", str(index)], "msg": f"no organization {org_id}"})
            elif status != "active":
                errors.append(
                    {"loc": ["body", "partner_org_ids", str(index)], "msg": f"organization {org_id} was merged"}
                )
        if errors:
            raise Unprocessable(f"partner_org_ids: {errors[0]['msg']}", errors=errors)

    async def sign_agreement(
        self, principal: Principal, content: dict[str, Any], signed_by: Body | None = None
    ) -> tuple[dict[str, Any], bool]:
        """(state, created). The same `external_ref` again with the same content: the existing agreement,
        nothing published; with other content: 409."""
        actor = actor_of(principal)
        signer = signed_by or actor.body
        if not actor.may_act_for(signer):
            raise Forbidden("Only an admin may sign for another body (`signed_by`).")
        today = self.today()

        async def attempt() -> tuple[dict[str, Any], bool]:
            async with self._transaction() as tx:
                agreement = Agreement.sign(id=self.new_id(), signed_by=signer, **content)
                if agreement.external_ref is not None:
                    existing = await tx.agreement_by_ref(signer, agreement.external_ref)
                    if existing is not None:
                        return self._same_or_conflict(existing, agreement)
                await self._check_partners(tx, agreement.partner_org_ids)
                await tx.add_agreement(agreement)
                state = v1.agreement_state(agreement)
                await _announce(tx, principal, "sign", v1.AGREEMENT_SIGNED, None, state)
                await self._after_change(tx, agreement, today)
                await tx.commit()
                return v1.agreement_state(agreement), True

        return await _again_on_duplicate_key(attempt)

    @staticmethod
    def _same_or_conflict(existing: Agreement, sent: Agreement) -> tuple[dict[str, Any], bool]:
        if existing.content() != sent.content():
            raise Conflict(
                f"external_ref {sent.external_ref!r} already names agreement {existing.id} with different content.",
                existing_id=existing.id,
            )
        return v1.agreement_state(existing), False

    async def _after_change(self, tx: Transaction, agreement: Agreement, today: date) -> None:
        """What a created or renewed agreement owes at once: its expiry if its day is over, or the notice
        of the window it is in."""
        if agreement.expire(today):
            await tx.save_agreement(agreement)
            await self._publish_expired(tx, agreement)
            return
        notice = agreement.due_notice(today)
        if notice is not None:
            await tx.save_agreement(agreement)
            await tx.publish(
                v1.AGREEMENT_EXPIRING, agreement.id, v1.agreement_state(agreement) | {"notice_days": notice}
            )

    async def _publish_expired(self, tx: Transaction, agreement: Agreement) -> None:
        state = v1.agreement_state(agreement)
        await tx.publish(v1.AGREEMENT_EXPIRED, agreement.id, state)
        await tx.audit(SCHEDULER, "expire", "agreement", agreement.id, {"status": {"old": "active", "new": "expired"}})

    async def get_agreement(self, agreement_id: str) -> dict[str, Any]:
        async with self._transaction() as tx:
            return v1.agreement_state(await self._agreement(tx, agreement_id))

    async def _agreement(self, tx: Transaction, agreement_id: str, *, lock: bool = False) -> Agreement:
        agreement = await tx.agreement(agreement_id, lock=lock)
        if agreement is None:
            raise NotFound(f"There is no agreement {agreement_id}.")
        return agreement

    async def list_agreements(
        self, query: AgreementQuery, *, expiring_within_days: int | None, limit: int, cursor: str | None
    ) -> Page:
        if expiring_within_days is not None:
            today = self.today()
            query = AgreementQuery(
                **{
                    **query.__dict__,
                    "expiring_from": today,
                    "expiring_to": today + timedelta(days=expiring_within_days),
                }
            )
        async with self._transaction() as tx:
            agreements = await tx.agreements(query, after=_cursor(cursor), limit=limit + 1)
        return _page([v1.agreement_state(a) for a in agreements], limit)

    async def update_agreement(
        self, principal: Principal, agreement_id: str, changes: dict[str, Any], if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        async with self._transaction() as tx:
            agreement = await self._agreement(tx, agreement_id, lock=True)
            _check_version(agreement.version, if_match, "agreement")
            before = v1.agreement_state(agreement)
            changed = agreement.update(actor_of(principal), changes)
            if not changed:
                return before
            if "partner_org_ids" in changed:
                await self._check_partners(tx, agreement.partner_org_ids)
            await tx.save_agreement(agreement)
            state = v1.agreement_state(agreement)
            await _announce(tx, principal, "update", v1.AGREEMENT_UPDATED, before, state)
            await tx.commit()
            return state

    async def renew_agreement(
        self, principal: Principal, agreement_id: str, expires_on: date, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        today = self.today()
        async with self._transaction() as tx:
            agreement = await self._agreement(tx, agreement_id, lock=True)
            _check_version(agreement.version, if_match, "agreement")
            before = v1.agreement_state(agreement)
            agreement.renew(actor_of(principal), expires_on, today)
            await tx.save_agreement(agreement)
            state = v1.agreement_state(agreement)
            await _announce(tx, principal, "renew", v1.AGREEMENT_RENEWED, before, state)
            await self._after_change(tx, agreement, today)
            await tx.commit()
            return v1.agreement_state(agreement)

    async def terminate_agreement(
        self, principal: Principal, agreement_id: str, reason: str, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        today = self.today()
        async with self._transaction() as tx:
            agreement = await self._agreement(tx, agreement_id, lock=True)
            _check_version(agreement.version, if_match, "agreement")
            before = v1.agreement_state(agreement)
            agreement.terminate(actor_of(principal), reason, today)
            await tx.save_agreement(agreement)
            state = v1.agreement_state(agreement)
            await _announce(tx, principal, "terminate", v1.AGREEMENT_TERMINATED, before, state)
            await tx.commit()
            return state

    async def agreement_history(self, agreement_id: str, *, after: int, limit: int) -> Sequence[AuditEntry]:
        async with self._transaction() as tx:
            await self._agreement(tx, agreement_id)
            return await tx.history("agreement", agreement_id, after=after, limit=limit)

    async def upload_document(self, principal: Principal, agreement_id: str, data: bytes) -> dict[str, Any]:
        """Keep the signed PDF scan of an agreement (replacing an earlier one)."""
        if not data.startswith(b"%PDF-"):
            raise Unprocessable(
                "The document is not a PDF.", errors=[{"loc": ["body"], "msg": "a PDF file starts with %PDF-"}]
            )
        if len(data) > MAX_DOCUMENT_BYTES:
            raise Unprocessable("The document is over 20 MB.", errors=[{"loc": ["body"], "msg": "over 20 MB"}])
        digest = hashlib.sha256(data).hexdigest()
        async with self._transaction() as tx:
            agreement = await self._agreement(tx, agreement_id, lock=True)
            agreement.ensure_changeable_by(actor_of(principal))
            before = v1.agreement_state(agreement)
            await self.documents.put(digest, data)
            agreement.attach_document(
                actor_of(principal),
                {"sha256": digest, "size_bytes": len(data), "uploaded_at": datetime.now(UTC).isoformat()},
            )
            await tx.save_agreement(agreement)
            state = v1.agreement_state(agreement)
            await _announce(tx, principal, "document", v1.AGREEMENT_UPDATED, before, state)
            await tx.commit()
            return state

    async def download_document(self, agreement_id: str) -> tuple[bytes, str]:
        async with self._transaction() as tx:
            agreement = await self._agreement(tx, agreement_id)
        if agreement.document is None:
            raise NotFound(f"Agreement {agreement_id} has no signed document yet.")
        digest = str(agreement.document["sha256"])
        data = await self.documents.get(digest)
        if data is None:
            raise NotFound(f"The signed document of agreement {agreement_id} is missing from the document storage.")
        return data, digest

    # -- the scheduler ----------------------------------------------------------------------------
    async def run_scheduler(self, today: date | None = None) -> SchedulerPass:
        """Expire the agreements whose last day is over and give the renewal notices due, each exactly
        once however many replicas run this: a pass runs only where `claim_scheduler` succeeds, and every
        agreement is re-checked under that claim."""
        today = today or self.today()
        expired = notices = 0
        while True:
            async with self._transaction() as tx:
                if not await tx.claim_scheduler():
                    return SchedulerPass(expired, notices, ran=False)
                due = await tx.agreements_due(today, SCHEDULER_BATCH)
                acted = 0
                for agreement in due:
                    if agreement.expire(today):
                        await tx.save_agreement(agreement)
                        await self._publish_expired(tx, agreement)
                        expired += 1
                        acted += 1
                        continue
                    notice = agreement.due_notice(today)
                    if notice is not None:
                        await tx.save_agreement(agreement)
                        state = v1.agreement_state(agreement) | {"notice_days": notice}
                        await tx.publish(v1.AGREEMENT_EXPIRING, agreement.id, state)
                        # no public field moves with a notice: the entry records which one was given
                        given = {"notice_days": {"old": None, "new": notice}}
                        await tx.audit(SCHEDULER, "notice", "agreement", agreement.id, given)
                        notices += 1
                        acted += 1
                await tx.commit()
            if len(due) < SCHEDULER_BATCH or acted == 0:
                return SchedulerPass(expired, notices)

    # -- memberships ------------------------------------------------------------------------------
    async def record_membership(
        self, principal: Principal, organization_id: str, since: date, member: Body | None = None
    ) -> dict[str, Any]:
        actor = actor_of(principal)
        body = member or actor.body
        if not actor.may_act_for(body):
            raise Forbidden("Only an admin may record a membership for another body (`member`).")

        async def attempt() -> dict[str, Any]:
            async with self._transaction() as tx:
                found = await tx.existing_organizations([organization_id])
                if found.get(organization_id) != "active":
                    reason = "was merged" if organization_id in found else "does not exist"
                    raise Unprocessable(
                        f"organization_id: the organization {reason}.",
                        errors=[{"loc": ["body", "organization_id"], "msg": f"the organization {reason}"}],
                    )
                existing = await tx.active_membership(organization_id, body)
                if existing is not None:
                    raise Conflict(
                        f"{body.kind} {body.code} is already a member (membership {existing.id}).",
                        existing_id=existing.id,
                    )
                membership = Membership(id=self.new_id(), organization_id=organization_id, member=body, since=since)
                await tx.add_membership(membership)
                state = v1.membership_state(membership)
                await _announce(tx, principal, "record", v1.MEMBERSHIP_RECORDED, None, state)
                await tx.commit()
                return state

        return await _again_on_duplicate_key(attempt)

    async def get_membership(self, membership_id: str) -> dict[str, Any]:
        async with self._transaction() as tx:
            return v1.membership_state(await self._membership(tx, membership_id))

    async def _membership(self, tx: Transaction, membership_id: str, *, lock: bool = False) -> Membership:
        membership = await tx.membership(membership_id, lock=lock)
        if membership is None:
            raise NotFound(f"There is no membership {membership_id}.")
        return membership

    async def end_membership(
        self, principal: Principal, membership_id: str, until: date | None, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        async with self._transaction() as tx:
            membership = await self._membership(tx, membership_id, lock=True)
            _check_version(membership.version, if_match, "membership")
            before = v1.membership_state(membership)
            try:
                membership.end(actor_of(principal), until or self.today())
            except InvalidValue as exc:
                raise _problem(exc) from exc
            await tx.save_membership(membership)
            state = v1.membership_state(membership)
            await _announce(tx, principal, "end", v1.MEMBERSHIP_ENDED, before, state)
            await tx.commit()
            return state

    async def list_memberships(self, query: MembershipQuery, *, limit: int, cursor: str | None) -> Page:
        async with self._transaction() as tx:
            items = await tx.memberships(query, after=_cursor(cursor), limit=limit + 1)
        return _page([v1.membership_state(m) for m in items], limit)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
