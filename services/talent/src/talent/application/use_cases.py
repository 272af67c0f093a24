"""The talent use cases: sync (JSON or a stream), read, erase. The only place that commits: each
change and the message announcing it are committed together (transactional outbox)."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from common.audit import field_changes
from common.auth import Principal
from common.errors import Forbidden, NotFound, Unprocessable, validation_errors
from common.ids import uuid7_strings
from common.outbox import MAX_MESSAGE_BYTES, MessageBatch, OutboxMessage
from pydantic import ValidationError

from talent.application.ports import AuditNote, Changes, PersonFilter, PostEntry, PostFilter, SocietyWriter, TalentStore
from talent.contracts import PERSON_REMOVED, PERSON_UPSERTED, SOURCE
from talent.domain.model import PERSONAL_FIELDS, Mode, Person, PersonRecord

log = logging.getLogger(__name__)

SYNC_SCOPE = "talent:sync"
CHUNK = 2_000  # records validated, compared and committed together in a stream


@dataclass(frozen=True)
class BadRecord:
    """A record that could not even be parsed (a stream line that is not a JSON object)."""

    msg: str


@dataclass
class SyncResult:
    mode: Mode
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": self.rejected,
        }


def may_read_personal(reader: Principal, society: str) -> bool:
    """Personal fields: `talent:sync` of the same society, or admin."""
    return reader.is_admin or (reader.org_kind == "society" and reader.org_code == society and reader.has(SYNC_SCOPE))


def society_of(actor: Principal, named: str | None) -> str:
    """The society a write acts for: the token's; hq with admin names one."""
    if actor.is_admin:
        if named is None:
            raise Unprocessable(
                "hq acting as admin must name the `society` whose pool it syncs.",
                errors=[{"loc": ["body", "society"], "msg": "required for hq admin"}],
            )
        return named
    if not actor.has(SYNC_SCOPE):
        raise Forbidden(f"The token lacks the `{SYNC_SCOPE}` scope.")
    if actor.org_kind != "society":
        raise Forbidden("Only a national society (or hq with admin) syncs a talent pool.")
    if named is not None and named != actor.org_code:
        raise Forbidden("A society syncs only its own pool; only hq with the admin scope may name another.")
    return actor.org_code


def _messages(max_bytes: int) -> MessageBatch:
    """The messages of one commit: a message that would not stay under `max_bytes` raises
    `MessageTooLarge` (422) before anything of the commit is written."""
    return MessageBatch(SOURCE, max_message_bytes=max_bytes)


def _message(messages: MessageBatch, kind: str, person: Person) -> OutboxMessage:
    return messages.message(kind, person.id, person.public_state())


def _erasure_note(person: Person) -> AuditNote:
    # The names of the erased fields only, never their values.
    erased = field_changes({name: "" for name in PERSONAL_FIELDS}, None, personal=PERSONAL_FIELDS)
    erased["version"] = {"old": person.version - 1, "new": person.version}
    return AuditNote("person.erased", "person", person.id, erased)


def _cursor(*parts: uuid.UUID | int) -> str:
    raw = b"".join(p.bytes if isinstance(p, uuid.UUID) else p.to_bytes(2, "big") for p in parts)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, size: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _bad_cursor() from exc
    if len(raw) != size:
        raise _bad_cursor()
    return raw


def _bad_cursor() -> Unprocessable:
    return Unprocessable("Invalid cursor.", errors=[{"loc": ["query", "cursor"], "msg": "not a cursor of this list"}])


class _Sync:
    """One sync under way: what it has seen, what it has answered."""

    def __init__(self, actor: Principal, society: str, mode: Mode, dry_run: bool, max_message_bytes: int) -> None:
        self.actor = actor
        self.max_message_bytes = max_message_bytes
        self.society = society
        self.result = SyncResult(mode, dry_run)
        self.present: set[str] = set()  # every external id the request named (a full sync keeps them)

    def validate(self, index: int, raw: Any) -> PersonRecord | None:
        external_id = raw.get("external_id") if isinstance(raw, dict) else None
        external_id = external_id.strip() if isinstance(external_id, str) and 0 < len(external_id) <= 200 else None
        if isinstance(raw, BadRecord):
            errors = [{"loc": ["records", str(index)], "msg": raw.msg}]
        else:
            try:
                record = PersonRecord.model_validate(raw)
            except ValidationError as exc:
                errors = [{**e, "loc": ["records", str(index), *e["loc"]]} for e in validation_errors(exc.errors())]
            else:
                if record.external_id in self.present:
                    errors = [
                        {"loc": ["records", str(index), "external_id"], "msg": "duplicate external_id in this request"}
                    ]
                else:
                    self.present.add(record.external_id)
                    return record
        if external_id is not None:
            # A rejected record still names a person the society holds: a full sync must not remove them.
            self.present.add(external_id)
        self.result.rejected.append({"index": index, "external_id": external_id, "errors": errors})
        return None

    async def apply(self, writer: SocietyWriter, records: list[PersonRecord]) -> Changes:
        changes = Changes(self.actor)
        if not records:
            return changes
        known = await writer.known([r.external_id for r in records])
        messages = _messages(self.max_message_bytes)
        fresh = iter(uuid7_strings(sum(1 for r in records if r.external_id not in known and not r.deleted)))
        for record in records:
            stored = known.get(record.external_id)
            if record.deleted:
                if stored is None:
                    self.result.unchanged += 1  # nobody to erase
                else:
                    self.erase(changes, stored.person(), messages)
            elif stored is None:
                person = Person.new(next(fresh), self.society, record)
                changes.created.append(person)
                changes.messages.append(_message(messages, PERSON_UPSERTED, person))
            else:
                before = stored.person()
                after = before.replaced_by(record)
                if after is before:
                    self.result.unchanged += 1
                else:
                    changes.updated.append(after)
                    changes.messages.append(_message(messages, PERSON_UPSERTED, after))
        self.result.created += len(changes.created)
        self.result.updated += len(changes.updated)
        return changes

    def erase(self, changes: Changes, person: Person, messages: MessageBatch) -> None:
        gone = person.erased()
        changes.erased.append(gone)
        changes.messages.append(_message(messages, PERSON_REMOVED, gone))
        changes.audit.append(_erasure_note(gone))
        self.result.removed += 1

    async def remove_absent(self, writer: SocietyWriter) -> Changes:
        changes = Changes(self.actor)
        messages = _messages(self.max_message_bytes)
        for stored in await writer.absent(self.present):
            self.erase(changes, stored.person(), messages)
        return changes

    def summary_note(self) -> AuditNote:
        r = self.result
        counts = {"created": r.created, "updated": r.updated, "removed": r.removed, "rejected": len(r.rejected)}
        return AuditNote(
            f"talent.sync.{r.mode}",
            "society",
            self.society,
            {name: {"old": None, "new": count} for name, count in counts.items()},
        )


class TalentService:
    def __init__(self, store: TalentStore, *, chunk: int = CHUNK, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.store = store
        self.chunk = chunk
        # A change whose message would not stay under this is refused (422) before anything is written.
        self.max_message_bytes = max_message_bytes

    async def sync(
        self,
        *,
        actor: Principal,
        society: str | None,
        mode: Mode,
        records: Iterable[Any] | AsyncIterable[Any],
        dry_run: bool = False,
    ) -> SyncResult:
        """Validate, compare and write the records chunk by chunk, each chunk committed with its
        messages; in `full` mode remove the people the request did not name, only once every record
        has arrived (a stream that breaks off removes nothing). The society's writer is held throughout,
        so two syncs of one society never interleave. `dry_run`: answer the same, write nothing."""
        acting_for = society_of(actor, society)
        sync = _Sync(actor, acting_for, mode, dry_run, self.max_message_bytes)
        async with self.store.writer(acting_for) as writer:
            try:
                batch: list[PersonRecord] = []
                index = 0
                async for raw in _each(records):
                    record = sync.validate(index, raw)
                    index += 1
                    if record is not None:
                        batch.append(record)
                    if len(batch) >= self.chunk:
                        await self._commit(writer, await sync.apply(writer, batch), dry_run)
                        batch = []
                await self._commit(writer, await sync.apply(writer, batch), dry_run)
                final = await sync.remove_absent(writer) if mode == "full" else Changes(actor)
                if not dry_run:
                    final.audit.append(sync.summary_note())
                await self._commit(writer, final, dry_run)
            except BaseException:
                await writer.rollback()
                raise
        r = sync.result
        log.info(
            "talent sync: society %s, mode %s%s: %d created, %d updated, %d unchanged, %d removed, %d rejected",
            acting_for,
            mode,
            " (dry run)" if dry_run else "",
            r.created,
            r.updated,
            r.unchanged,
            r.removed,
            len(r.rejected),
        )
        return r

    @staticmethod
    async def _commit(writer: SocietyWriter, changes: Changes, dry_run: bool) -> None:
        if dry_run or not changes:
            return
        await writer.write(changes)
        await writer.commit()

    async def erase(self, *, actor: Principal, person_id: uuid.UUID) -> Person:
        """Erase a person's personal fields and publish the removal; erasing twice changes nothing."""
        person = await self.store.get(person_id)
        if person is None:
            raise NotFound(f"There is no person {person_id}.")
        if not may_read_personal(actor, person.society) or not actor.has(SYNC_SCOPE):
            raise Forbidden("Only the person's society (with `talent:sync`) or hq with admin may erase them.")
        async with self.store.writer(person.society) as writer:
            try:
                stored = await writer.by_id(person_id)
                if stored is None or stored.deleted:
                    return person if stored is None else stored.person().erased()  # already erased
                sync = _Sync(actor, person.society, "delta", False, self.max_message_bytes)
                changes = Changes(actor)
                sync.erase(changes, stored.person(), _messages(self.max_message_bytes))
                await writer.write(changes)
                await writer.commit()
            except BaseException:
                await writer.rollback()
                raise
        log.info("talent person erased: society %s, person %s", person.society, person_id)
        return changes.erased[0]

    async def get(self, *, reader: Principal, person_id: uuid.UUID) -> dict[str, Any]:
        person = await self.store.get(person_id)
        if person is None:
            raise NotFound(f"There is no person {person_id}.")
        return person.full_state() if may_read_personal(reader, person.society) else person.public_state()

    async def list_persons(
        self, *, reader: Principal, where: PersonFilter, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        after = uuid.UUID(bytes=_decode(cursor, 16)) if cursor else None
        people = await self.store.list_persons(where, limit=limit + 1, after=after)
        page = people[:limit]
        items = [p.full_state() if may_read_personal(reader, p.society) else p.public_state() for p in page]
        return items, _cursor(uuid.UUID(page[-1].id)) if len(people) > limit else None

    async def list_posts(
        self, *, where: PostFilter, limit: int, cursor: str | None
    ) -> tuple[list[PostEntry], str | None]:
        after = None
        if cursor:
            raw = _decode(cursor, 18)
            after = (uuid.UUID(bytes=raw[:16]), int.from_bytes(raw[16:], "big"))
        posts = await self.store.list_posts(where, limit=limit + 1, after=after)
        page = posts[:limit]
        last = page[-1] if page else None
        next_cursor = _cursor(uuid.UUID(last.person_id), last.position) if last and len(posts) > limit else None
        return page, next_cursor


async def _each(records: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record
