"""The use cases of the events service. The only place that opens transactions and commits: each
change and the message announcing it are committed together (transactional outbox)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import asyncpg
import orjson
from common.envelope import CloudEvent, new_event
from common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable, validation_errors
from common.ids import new_message_id, uuid7, uuid7_strings
from common.observability import traceparent_var
from common.outbox import MAX_MESSAGE_BYTES, MessageTooLarge, add_many_to_outbox, add_to_outbox, check_message_size
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events.adapters import repository as repo
from events.adapters.pg import PgPool
from events.adapters.tables import outbox
from events.application.group_commit import GroupCommit
from events.contracts import EVENT_CANCELLED, EVENT_RECORDED, EVENT_UPDATED, SOURCE
from events.domain.model import (
    CONTENT_FIELDS,
    MAX_BATCH,
    EventContent,
    EventCreate,
    EventPatch,
    Organizer,
    can_act_for,
    explain,
    may_act_for,
)


@dataclass(frozen=True)
class Actor:
    """The calling body, from the token."""

    org_kind: str
    org_code: str
    is_admin: bool

    @property
    def organizer(self) -> Organizer:
        return Organizer.model_construct(kind=self.org_kind, code=self.org_code)  # type: ignore[arg-type]


def _message(type_: str, state: dict[str, Any]) -> CloudEvent:
    return new_event(source=SOURCE, type=type_, subject=state["id"], data=state)


def _organizer_for(actor: Actor, named: Organizer | None) -> Organizer:
    organizer = named or actor.organizer
    if not can_act_for(org_kind=actor.org_kind, org_code=actor.org_code, is_admin=actor.is_admin, organizer=organizer):
        raise Forbidden(
            "Only hq with the admin scope may act for another body; "
            f"the token acts for {actor.org_kind}:{actor.org_code}."
        )
    return organizer


def _check_owner(actor: Actor, row: dict[str, Any]) -> None:
    organizer = Organizer.model_construct(kind=row["organizer_kind"], code=row["organizer_code"])
    if not can_act_for(org_kind=actor.org_kind, org_code=actor.org_code, is_admin=actor.is_admin, organizer=organizer):
        raise Forbidden("This event belongs to another body.")


def _check_version(row: dict[str, Any], if_match: frozenset[int] | None) -> None:
    """`If-Match` lists the versions the client expects (None: no header, or `*`)."""
    if if_match is not None and row["version"] not in if_match:
        raise PreconditionFailed(
            f"The event is at version {row['version']}; If-Match names another. Read it again.",
            current_version=row["version"],
        )


@dataclass(frozen=True)
class Recorded:
    state: dict[str, Any]
    created: bool


# Groups of single creates being written at once: one statement in PostgreSQL while the next group
# gathers (bench/events/README.md).
CREATES_IN_FLIGHT = 2


@dataclass(frozen=True)
class _Create:
    key: repo.Key
    content: dict[str, Any]
    headers: str  # the request's own (its trace context)


@dataclass(frozen=True)
class _Outcome:
    created: bool
    state: dict[str, Any]  # the new event's, or the one that had the key
    content: dict[str, Any]  # what that event holds, for the idempotency comparison


def _row_error(exc: BaseException) -> bool:
    """An error one row can cause (the group is then written again one by one): a value PostgreSQL
    refuses (class 22, 23, 54) or asyncpg cannot encode, or a deadlock between groups. Not a database
    that is down, starting, full or read-only: that fails the whole group at once."""
    row_errors = (
        asyncpg.DataError,
        asyncpg.IntegrityConstraintViolationError,
        asyncpg.ProgramLimitExceededError,
        asyncpg.TransactionRollbackError,
        ValueError,
    )
    return isinstance(exc, row_errors)


ItemStatus = Literal["created", "unchanged", "conflict", "rejected"]


@dataclass
class ItemResult:
    external_ref: str | None
    status: ItemStatus
    id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"external_ref": self.external_ref, "status": self.status}
        if self.id is not None:
            answer["id"] = self.id
        if self.errors:
            answer["errors"] = self.errors
        return answer


def _headers(event_type: str) -> str:
    headers = {"content-type": "application/cloudevents+json", "ce_type": event_type}
    if traceparent := traceparent_var.get():
        headers["traceparent"] = traceparent
    return json.dumps(headers)


def _envelope(
    event_type: str,
    state: dict[str, Any],
    now: datetime,
    *,
    headers: str,
    max_bytes: int,
    message_id: str | None = None,
    time: str | None = None,
) -> tuple[str, str]:
    """(message id, CloudEvent JSON): the envelope `common.envelope.new_event` builds, serialised
    directly by orjson (its values are JSON-ready already); on the bulk path building a pydantic
    model per message cost more than the insert, and orjson writes these dicts in a third of
    pydantic-core's `to_json` time. A batch passes its ids and time, made once for all its messages.
    Raises `MessageTooLarge` when the message (with `headers`) would not stay under `max_bytes`."""
    message_id = message_id or new_message_id()
    envelope = {
        "specversion": "1.0",
        "id": message_id,
        "source": SOURCE,
        "type": event_type,
        "subject": state["id"],
        "time": time or _cloudevent_time(now),
        "datacontenttype": "application/json",
        "data": state,
    }
    payload = orjson.dumps(envelope)
    check_message_size(state["id"], payload, headers, state, max_bytes)
    return message_id, payload.decode()


def _cloudevent_time(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Rejected:
    """A batch item that did not validate: its `external_ref` if it had a usable one, and why."""

    external_ref: str | None
    errors: list[dict[str, Any]]


# A batch item after validation: the item as `EventCreate(...).model_dump(mode="json")` (canonical
# content plus `external_ref` and `organizer`), or why it was rejected.
Draft = dict[str, Any] | Rejected


class EventsService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topic: str,
        *,
        pool: PgPool | None = None,
        wake_relay: Callable[[], None] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.sessions = sessions
        self.topic = topic
        # A change whose message would not stay under this is refused (422) before anything is written.
        self.max_message_bytes = max_message_bytes
        # On PostgreSQL, creates take the raw single-statement paths (repository.record_*_postgres).
        self.pool = pool
        self.wake_relay = wake_relay or (lambda: None)
        # Single creates on PostgreSQL are written in groups (group_commit); SQLite writes one at a time.
        self._creates = (
            GroupCommit(self._write_creates, max_group=MAX_BATCH, max_in_flight=CREATES_IN_FLIGHT, isolate=_row_error)
            if pool is not None
            else None
        )

    async def drain(self) -> None:
        """Finish the single creates under way (before the pool closes)."""
        if self._creates is not None:
            await self._creates.drain()

    async def _write_creates(self, creates: list[_Create]) -> list[_Outcome | Exception]:
        """Single creates in one statement (the batch's), each with its request's headers; an outcome
        per create, in order. The same key twice: the first creates, the second finds it."""
        assert self.pool is not None
        now = datetime.now(UTC)
        stamp, time = now.isoformat(), _cloudevent_time(now)
        firsts: dict[repo.Key, tuple[dict[str, Any], dict[str, Any], str]] = {}  # key -> (state, content, headers)
        for create, event_id in zip(creates, uuid7_strings(len(creates)), strict=True):
            if create.key not in firsts:
                state = repo.new_state(event_id, *create.key, create.content, stamp)
                firsts[create.key] = (state, create.content, create.headers)
        # In key order: two groups in flight then take the unique index's entries in the same order
        # and cannot deadlock each other.
        ordered = [firsts[key] for key in sorted(firsts)]
        states = [state for state, _content, _headers in ordered]
        headers = [headers for _state, _content, headers in ordered]
        # A message too large fails this group; its creates are then written one by one and only that
        # request gets the 422 (MessageTooLarge is a row error).
        messages = [
            _envelope(
                EVENT_RECORDED,
                state,
                now,
                headers=h,
                max_bytes=self.max_message_bytes,
                message_id=message_id,
                time=time,
            )
            for state, h, message_id in zip(states, headers, uuid7_strings(len(states)), strict=True)
        ]
        async with self.pool.connection() as connection:
            inserted = await repo.record_many_postgres(
                connection, states, messages, topic=self.topic, headers=headers, now=now
            )
        if inserted:
            self.wake_relay()
        # The keys that were there already (a POST sent again) are read after the insert committed:
        # should that read fail, only their requests fail, and the new events still answer 201.
        missing = [key for key, (state, _content, _headers) in firsts.items() if state["id"] not in inserted]
        existing: dict[repo.Key, dict[str, Any]] = {}
        lookup_failed: Exception | None = None
        if missing:
            try:
                async with self.pool.connection() as connection:
                    existing = await repo.find_by_keys_postgres(connection, missing)
            except Exception as exc:
                lookup_failed = exc
        outcomes: list[_Outcome | Exception] = []
        announced: set[repo.Key] = set()
        for create in creates:
            state, content, _headers = firsts[create.key]
            if state["id"] in inserted:
                outcomes.append(_Outcome(create.key not in announced, state, content))
                announced.add(create.key)
            elif lookup_failed is not None:
                outcomes.append(lookup_failed)
            else:  # events are never deleted: the row that won the key is there
                row = existing[create.key]
                outcomes.append(_Outcome(False, repo.state_of(row), repo.content_of(row)))
        return outcomes

    # -- create ------------------------------------------------------------------------------------
    async def record_event(self, *, actor: Actor, draft: EventCreate) -> Recorded:
        """Record a new event, or answer the existing one when this external_ref was posted before."""
        organizer = _organizer_for(actor, draft.organizer)
        content = draft.canonical_content()
        key: repo.Key = (organizer.kind, organizer.code, draft.external_ref)
        if self._creates is not None:
            outcome = await self._creates.submit(_Create(key, content, _headers(EVENT_RECORDED)))
        else:
            outcome = await self._record_on_sqlite(key, content)
        if outcome.created:
            return Recorded(outcome.state, created=True)
        if outcome.content != content:
            raise Conflict(
                f"external_ref {draft.external_ref!r} already names another event with different content.",
                existing_id=outcome.state["id"],
            )
        return Recorded(outcome.state, created=False)

    async def _record_on_sqlite(self, key: repo.Key, content: dict[str, Any]) -> _Outcome:
        """One create in its own transaction (SQLite has one writer at a time: nothing to group)."""
        now = datetime.now(UTC)
        state = repo.new_state(str(uuid7()), *key, content, now.isoformat())
        async with self.sessions() as session, session.begin():
            if await repo.insert_if_new(session, _row_of(state, now)):
                await add_to_outbox(
                    session,
                    outbox,
                    _message(EVENT_RECORDED, state),
                    self.topic,
                    max_message_bytes=self.max_message_bytes,
                )
                return _Outcome(True, state, content)
        async with self.sessions() as session:
            existing = await repo.find_by_key(session, key)
        if existing is None:  # pragma: no cover - the conflicting row cannot vanish: events are never deleted
            raise Conflict("The event could not be recorded; retry.")
        return _Outcome(False, repo.state_of(existing), repo.content_of(existing))

    async def record_batch(self, *, actor: Actor, items: Sequence[Any]) -> list[ItemResult]:
        """Validate each item on its own, then record the valid ones (see `record_drafts`)."""
        drafts: list[Draft] = []
        for index, raw in enumerate(items):
            try:
                drafts.append(EventCreate.model_validate(raw).model_dump(mode="json"))
            except ValidationError as exc:
                ref = raw.get("external_ref") if isinstance(raw, dict) else None
                drafts.append(Rejected(ref if isinstance(ref, str) else None, _item_errors(index, exc.errors())))
        return await self.record_drafts(actor=actor, drafts=drafts)

    async def record_drafts(self, *, actor: Actor, drafts: Sequence[Draft]) -> list[ItemResult]:
        """Record the valid new items of a batch in one transaction; per-item results, in order."""
        results: list[ItemResult] = []
        candidates: dict[repo.Key, tuple[dict[str, Any], dict[str, Any]]] = {}  # key -> (content, state)
        pending: list[tuple[int, ItemResult, repo.Key, dict[str, Any]]] = []
        now = datetime.now(UTC)
        stamp = now.isoformat()
        ids = iter(uuid7_strings(len(drafts)))
        for index, draft in enumerate(drafts):
            if isinstance(draft, Rejected):
                results.append(ItemResult(draft.external_ref, "rejected", errors=draft.errors))
                continue
            content = draft  # ours to change: fresh from model_dump
            external_ref: str = content.pop("external_ref")
            named: dict[str, str] | None = content.pop("organizer")
            kind, code = (actor.org_kind, actor.org_code) if named is None else (named["kind"], named["code"])
            result = ItemResult(external_ref, "rejected")
            results.append(result)
            if not may_act_for(
                org_kind=actor.org_kind, org_code=actor.org_code, is_admin=actor.is_admin, kind=kind, code=code
            ):
                result.errors = [
                    {"loc": ["events", str(index), "organizer"], "msg": "only hq with admin may act for another body"}
                ]
                continue
            key: repo.Key = (kind, code, external_ref)
            if key not in candidates:
                candidates[key] = (content, repo.new_state(next(ids), *key, content, stamp))
            pending.append((index, result, key, content))

        # Each new event's message, built once: an item whose message would be too large is rejected
        # alone (PostgreSQL then writes these very messages).
        headers, time = _headers(EVENT_RECORDED), _cloudevent_time(now)
        messages: list[tuple[str, str]] = []
        too_large: dict[repo.Key, MessageTooLarge] = {}
        for (key, (_content, state)), message_id in zip(
            list(candidates.items()),
            uuid7_strings(len(candidates)),
            strict=True,  # time-ordered ids
        ):
            try:
                messages.append(
                    _envelope(
                        EVENT_RECORDED,
                        state,
                        now,
                        headers=headers,
                        max_bytes=self.max_message_bytes,
                        message_id=message_id,
                        time=time,
                    )
                )
            except MessageTooLarge as exc:
                too_large[key] = exc
                del candidates[key]
        states = [state for _content, state in candidates.values()]
        existing: dict[repo.Key, dict[str, Any]] = {}
        if self.pool is not None:
            async with self.pool.connection() as connection:
                inserted_ids = await repo.record_many_postgres(
                    connection, states, messages, topic=self.topic, headers=headers, now=now
                )
                # One lookup for every key that was there already (a resent batch).
                missing = [key for key, (_c, state) in candidates.items() if state["id"] not in inserted_ids]
                if missing:
                    existing = await repo.find_by_keys_postgres(connection, missing)
            inserted = {key for key, (_c, state) in candidates.items() if state["id"] in inserted_ids}
            if inserted:
                self.wake_relay()
        else:
            async with self.sessions() as session, session.begin():
                inserted = await repo.insert_many_if_new(session, [_row_of(state, now) for state in states])
                missing = [key for key in candidates if key not in inserted]
                existing = await repo.find_by_keys(session, missing) if missing else {}
                messages_of = [_message(EVENT_RECORDED, candidates[key][1]) for key in candidates if key in inserted]
                await add_many_to_outbox(
                    session, outbox, messages_of, self.topic, max_message_bytes=self.max_message_bytes
                )

        announced: set[repo.Key] = set()
        for index, result, key, content in pending:
            if (refused := too_large.get(key)) is not None:  # the item's status stays "rejected"
                result.errors = [
                    {"loc": ["events", str(index), *e["loc"][1:]], "msg": e["msg"]} for e in refused.extra["errors"]
                ]
                continue
            if key in inserted:
                stored_content, state = candidates[key]
                result.id = state["id"]
                if key not in announced:
                    announced.add(key)
                    result.status = "created"
                elif stored_content == content:
                    result.status = "unchanged"  # the same item twice in one batch
                else:
                    result.status = "conflict"
                    result.errors = [_conflict_error(key[2])]
                continue
            row = existing[key]
            result.id = str(row["id"])
            if repo.content_of(row) == content:
                result.status = "unchanged"
            else:
                result.status = "conflict"
                result.errors = [_conflict_error(key[2])]
        return results

    # -- read --------------------------------------------------------------------------------------
    async def get_event(self, event_id: uuid.UUID) -> dict[str, Any]:
        async with self.sessions() as session:
            row = await repo.get(session, event_id)
        if row is None:
            raise NotFound(f"There is no event {event_id}.")
        return repo.state_of(row)

    async def list_events(
        self, where: repo.EventFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        after = repo.decode_cursor(cursor) if cursor else None
        async with self.sessions() as session:
            rows, next_cursor = await repo.list_events(session, where, limit=limit, after=after)
        return [repo.state_of(r) for r in rows], next_cursor

    # -- change ------------------------------------------------------------------------------------
    async def update_event(
        self, *, actor: Actor, event_id: uuid.UUID, patch: EventPatch, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            row = await self._owned(session, actor, event_id, if_match)
            if row["status"] == "cancelled":
                raise Conflict("A cancelled event cannot be changed.", existing_id=str(event_id))
            current = repo.content_of(row)
            try:
                changed = patch.apply_to(EventContent.model_validate(current)).canonical()
            except ValidationError as exc:
                errors = [{**e, "loc": ["body", *map(str, e["loc"])]} for e in validation_errors(explain(exc.errors()))]
                raise Unprocessable("The change would make the event invalid.", errors=errors) from exc
            if changed == current:
                return repo.state_of(row)  # nothing changed: no new version, nothing published
            values = {**changed, "version": row["version"] + 1, "updated_at": datetime.now(UTC)}
            values["start_date"] = date.fromisoformat(changed["start_date"])
            values["end_date"] = date.fromisoformat(changed["end_date"])
            state = repo.state_of(await repo.update_event(session, event_id, values))
            await add_to_outbox(
                session, outbox, _message(EVENT_UPDATED, state), self.topic, max_message_bytes=self.max_message_bytes
            )
            return state

    async def cancel_event(
        self, *, actor: Actor, event_id: uuid.UUID, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            row = await self._owned(session, actor, event_id, if_match)
            if row["status"] == "cancelled":
                return repo.state_of(row)  # cancelling twice is a no-op
            values = {"status": "cancelled", "version": row["version"] + 1, "updated_at": datetime.now(UTC)}
            state = repo.state_of(await repo.update_event(session, event_id, values))
            await add_to_outbox(
                session, outbox, _message(EVENT_CANCELLED, state), self.topic, max_message_bytes=self.max_message_bytes
            )
            return state

    async def _owned(
        self, session: AsyncSession, actor: Actor, event_id: uuid.UUID, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        row = await repo.get(session, event_id, for_update=True)
        if row is None:
            raise NotFound(f"There is no event {event_id}.")
        _check_owner(actor, row)
        _check_version(row, if_match)
        return row


def _item_errors(index: int, errors: Any) -> list[dict[str, Any]]:
    return [{**e, "loc": ["events", str(index), *e["loc"]]} for e in validation_errors(explain(errors))]


def _row_of(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Column values of a new event from its state (the portable session path)."""
    organizer = state["organizer"]
    return repo.row_values(
        event_id=uuid.UUID(state["id"]),
        organizer_kind=organizer["kind"],
        organizer_code=organizer["code"],
        external_ref=state["external_ref"],
        content={name: state[name] for name in CONTENT_FIELDS},
        now=now,
    )


def _conflict_error(external_ref: str) -> dict[str, Any]:
    return {"loc": ["external_ref"], "msg": f"{external_ref!r} already names another event with different content"}
