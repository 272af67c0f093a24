"""The use cases of the events service. Each change, the message announcing it and its entry in the
audit record are written together (transactional outbox) through the `EventStore` port; nothing here
knows which database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from common.audit import field_changes
from common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable, validation_errors
from common.ids import uuid7_strings
from common.outbox import (
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    OutboxMessage,
    cloudevent_time,
    message_headers,
    outbox_message,
)
from common.pagination import decode_cursor, encode_cursor
from pydantic import ValidationError

from events.application.group_commit import GroupCommit
from events.application.ports import NOT_AUDITED, Actor, AuditNote, Change, Decide, EventFilter, EventStore
from events.contracts import EVENT_CANCELLED, EVENT_RECORDED, EVENT_UPDATED, SOURCE
from events.domain.event import Event, EventCancelled, Key
from events.domain.model import (
    MAX_BATCH,
    EventContent,
    EventCreate,
    EventPatch,
    Organizer,
    can_act_for,
    explain,
    may_act_for,
)


def _audited(state: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in state.items() if name not in NOT_AUDITED}


def _organizer_for(actor: Actor, named: Organizer | None) -> Organizer:
    organizer = named or actor.organizer
    if not can_act_for(org_kind=actor.org_kind, org_code=actor.org_code, is_admin=actor.is_admin, organizer=organizer):
        raise Forbidden(
            "Only hq with the admin scope may act for another body; "
            f"the token acts for {actor.org_kind}:{actor.org_code}."
        )
    return organizer


def _check_owner(actor: Actor, event: Event) -> None:
    kind, code, _ref = event.key
    if not may_act_for(org_kind=actor.org_kind, org_code=actor.org_code, is_admin=actor.is_admin, kind=kind, code=code):
        raise Forbidden("This event belongs to another body.")


def _check_version(event: Event, if_match: frozenset[int] | None) -> None:
    """`If-Match` lists the versions the client expects (None: no header, or `*`)."""
    if if_match is not None and event.version not in if_match:
        raise PreconditionFailed(
            f"The event is at version {event.version}; If-Match names another. Read it again.",
            current_version=event.version,
        )


@dataclass(frozen=True)
class Recorded:
    state: dict[str, Any]
    created: bool


@dataclass(frozen=True)
class _Create:
    key: Key
    content: dict[str, Any]
    headers: str  # the request's own (its trace context)
    actor: Actor  # the request's own (its audit entry's)


@dataclass(frozen=True)
class _Outcome:
    created: bool
    event: Event  # the new event, or the one that had the key
    content: dict[str, Any]  # what that event holds, for the idempotency comparison


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


@dataclass(frozen=True)
class Rejected:
    """A batch item that did not validate: its `external_ref` if it had a usable one, and why."""

    external_ref: str | None
    errors: list[dict[str, Any]]


# A batch item after validation: the item as `EventCreate(...).model_dump(mode="json")` (canonical
# content plus `external_ref` and `organizer`), or why it was rejected.
Draft = dict[str, Any] | Rejected


def _message(
    event_type: str,
    event: Event,
    *,
    max_bytes: int,
    headers: str | None = None,
    message_id: str | None = None,
    time: str | None = None,
) -> OutboxMessage:
    """The message announcing `event`'s new state (`common.outbox.outbox_message`, the one builder)."""
    return outbox_message(
        source=SOURCE,
        type=event_type,
        subject=event.state["id"],
        data=event.state,
        headers=headers,
        message_id=message_id,
        time=time,
        max_message_bytes=max_bytes,
    )


def _change(
    event_type: str, action: str, actor: Actor, before: dict[str, Any], event: Event, *, max_bytes: int
) -> Change:
    """The message announcing `event`'s change from `before` and its audit entry (the changed fields)."""
    changes = field_changes(_audited(before), _audited(event.state))
    return Change(_message(event_type, event, max_bytes=max_bytes), AuditNote(actor, action, changes))


class EventsService:
    def __init__(self, store: EventStore, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.store = store
        # A change whose message would not stay under this is refused (422) before anything is written.
        self.max_message_bytes = max_message_bytes
        # Single creates are written in groups: what arrives while a group is written goes in the next.
        self._creates = GroupCommit(
            self._write_creates,
            max_group=MAX_BATCH,
            max_in_flight=store.concurrent_writes,
            isolate=store.is_row_error,
        )

    async def drain(self) -> None:
        """Finish the single creates under way (before the store closes)."""
        await self._creates.drain()

    async def _write_creates(self, creates: list[_Create]) -> list[_Outcome | Exception]:
        """Single creates in one write (the batch's), each with its request's headers; an outcome per
        create, in order. The same key twice: the first creates, the second finds it."""
        now = datetime.now(UTC)
        stamp, time = now.isoformat(), cloudevent_time(now)
        firsts: dict[Key, tuple[Event, _Create]] = {}  # key -> (event, its first create)
        for create, event_id in zip(creates, uuid7_strings(len(creates)), strict=True):
            if create.key not in firsts:
                event = Event.record(event_id=event_id, key=create.key, content=create.content, stamp=stamp)
                firsts[create.key] = (event, create)
        # In key order: two groups in flight then take the unique index's entries in the same order
        # and cannot deadlock each other.
        ordered = [firsts[key] for key in sorted(firsts)]
        new = [event for event, _create in ordered]
        # A message too large fails this group; its creates are then written one by one and only that
        # request gets the 422 (MessageTooLarge is a row error).
        messages = [
            _message(
                EVENT_RECORDED, event, max_bytes=self.max_message_bytes, headers=c.headers, message_id=i, time=time
            )
            for (event, c), i in zip(ordered, uuid7_strings(len(ordered)), strict=True)
        ]
        inserted = await self.store.add_new(new, messages, [c.actor for _event, c in ordered], now=now)
        # The keys that were there already (a POST sent again) are read after the insert committed:
        # should that read fail, only their requests fail, and the new events still answer 201.
        missing = [key for key, (event, _create) in firsts.items() if event.id not in inserted]
        existing: dict[Key, Event] = {}
        lookup_failed: Exception | None = None
        if missing:
            try:
                existing = dict(await self.store.find_by_keys(missing))
            except Exception as exc:
                lookup_failed = exc
        outcomes: list[_Outcome | Exception] = []
        announced: set[Key] = set()
        for create in creates:
            event, first = firsts[create.key]
            if event.id in inserted:
                outcomes.append(_Outcome(create.key not in announced, event, first.content))
                announced.add(create.key)
            elif lookup_failed is not None:
                outcomes.append(lookup_failed)
            else:  # events are never deleted: the event that won the key is there
                found = existing[create.key]
                outcomes.append(_Outcome(False, found, found.content()))
        return outcomes

    # -- create ------------------------------------------------------------------------------------
    async def record_event(self, *, actor: Actor, draft: EventCreate) -> Recorded:
        """Record a new event, or answer the existing one when this external_ref was posted before."""
        organizer = _organizer_for(actor, draft.organizer)
        content = draft.canonical_content()
        key: Key = (organizer.kind, organizer.code, draft.external_ref)
        outcome = await self._creates.submit(_Create(key, content, message_headers(EVENT_RECORDED), actor))
        if outcome.created:
            return Recorded(outcome.event.state, created=True)
        if outcome.content != content:
            raise Conflict(
                f"external_ref {draft.external_ref!r} already names another event with different content.",
                existing_id=outcome.event.id,
            )
        return Recorded(outcome.event.state, created=False)

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
        candidates: dict[Key, tuple[dict[str, Any], Event]] = {}  # key -> (content, event)
        pending: list[tuple[int, ItemResult, Key, dict[str, Any]]] = []
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
            key: Key = (kind, code, external_ref)
            if key not in candidates:
                candidates[key] = (content, Event.record(event_id=next(ids), key=key, content=content, stamp=stamp))
            pending.append((index, result, key, content))

        # Each new event's message, built once: an item whose message would be too large is rejected alone.
        headers, time = message_headers(EVENT_RECORDED), cloudevent_time(now)
        messages: list[OutboxMessage] = []
        too_large: dict[Key, MessageTooLarge] = {}
        for (key, (_content, event)), message_id in zip(
            list(candidates.items()),
            uuid7_strings(len(candidates)),
            strict=True,  # time-ordered ids
        ):
            try:
                messages.append(
                    _message(
                        EVENT_RECORDED,
                        event,
                        max_bytes=self.max_message_bytes,
                        headers=headers,
                        message_id=message_id,
                        time=time,
                    )
                )
            except MessageTooLarge as exc:
                too_large[key] = exc
                del candidates[key]
        new = [event for _c, event in candidates.values()]
        inserted_ids = await self.store.add_new(new, messages, [actor] * len(new), now=now)
        inserted = {key for key, (_c, event) in candidates.items() if event.id in inserted_ids}
        # One lookup for every key that was there already (a resent batch).
        missing = [key for key in candidates if key not in inserted]
        existing = await self.store.find_by_keys(missing) if missing else {}

        announced: set[Key] = set()
        for index, result, key, content in pending:
            if (refused := too_large.get(key)) is not None:  # the item's status stays "rejected"
                result.errors = [
                    {"loc": ["events", str(index), *e["loc"][1:]], "msg": e["msg"]} for e in refused.extra["errors"]
                ]
                continue
            if key in inserted:
                stored_content, event = candidates[key]
                result.id = event.id
                if key not in announced:
                    announced.add(key)
                    result.status = "created"
                elif stored_content == content:
                    result.status = "unchanged"  # the same item twice in one batch
                else:
                    result.status = "conflict"
                    result.errors = [_conflict_error(key[2])]
                continue
            found = existing[key]
            result.id = found.id
            if found.content() == content:
                result.status = "unchanged"
            else:
                result.status = "conflict"
                result.errors = [_conflict_error(key[2])]
        return results

    # -- read --------------------------------------------------------------------------------------
    async def get_event(self, event_id: uuid.UUID) -> dict[str, Any]:
        event = await self.store.get(event_id)
        if event is None:
            raise NotFound(f"There is no event {event_id}.")
        return event.state

    async def list_events(
        self, where: EventFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        after = decode_cursor(cursor) if cursor else None
        found, next_after = await self.store.list(where, limit=limit, after=after)
        return [event.state for event in found], encode_cursor(next_after) if next_after else None

    # -- change ------------------------------------------------------------------------------------
    async def update_event(
        self, *, actor: Actor, event_id: uuid.UUID, patch: EventPatch, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        def decide(event: Event) -> Change | None:
            _check_owner(actor, event)
            _check_version(event, if_match)
            before = event.state
            try:
                event.check_changeable()  # before the change is validated: a cancelled event takes none
                try:
                    changed = patch.apply_to(EventContent.model_validate(event.content())).canonical()
                except ValidationError as exc:
                    errors = [
                        {**e, "loc": ["body", *map(str, e["loc"])]} for e in validation_errors(explain(exc.errors()))
                    ]
                    raise Unprocessable("The change would make the event invalid.", errors=errors) from exc
                if not event.change(changed, datetime.now(UTC).isoformat()):
                    return None  # nothing changed: no new version, nothing published
            except EventCancelled as exc:
                raise Conflict(str(exc), existing_id=exc.event_id) from exc
            return _change(EVENT_UPDATED, "update", actor, before, event, max_bytes=self.max_message_bytes)

        return await self._change(event_id, decide)

    async def cancel_event(
        self, *, actor: Actor, event_id: uuid.UUID, if_match: frozenset[int] | None
    ) -> dict[str, Any]:
        def decide(event: Event) -> Change | None:
            _check_owner(actor, event)
            _check_version(event, if_match)
            before = event.state
            if not event.cancel(datetime.now(UTC).isoformat()):
                return None  # cancelling twice is a no-op
            return _change(EVENT_CANCELLED, "cancel", actor, before, event, max_bytes=self.max_message_bytes)

        return await self._change(event_id, decide)

    async def _change(self, event_id: uuid.UUID, decide: Decide) -> dict[str, Any]:
        event = await self.store.change(event_id, decide)
        if event is None:
            raise NotFound(f"There is no event {event_id}.")
        return event.state


def _item_errors(index: int, errors: Any) -> list[dict[str, Any]]:
    return [{**e, "loc": ["events", str(index), *e["loc"]]} for e in validation_errors(explain(errors))]


def _conflict_error(external_ref: str) -> dict[str, Any]:
    return {"loc": ["external_ref"], "msg": f"{external_ref!r} already names another event with different content"}
