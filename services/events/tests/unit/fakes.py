"""An in-memory `EventStore` for unit tests of the use cases: the rules without a database."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from common.outbox import OutboxMessage
from events.application.ports import RECORD, RECORDED_CHANGES, Actor, AuditNote, Decide, EventFilter
from events.domain.event import Event, Key


class InMemoryEventStore:
    concurrent_writes = 1

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.messages: list[OutboxMessage] = []  # the outbox, in commit order
        self.audit: list[tuple[str, AuditNote]] = []  # (event id, entry), in commit order

    def published(self) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.messages]

    def _by_key(self) -> dict[Key, Event]:
        return {event.key: event for event in self.events.values()}

    async def add_new(
        self,
        events: Sequence[Event],
        messages: Sequence[OutboxMessage],
        actors: Sequence[Actor],
        *,
        now: datetime,
    ) -> set[str]:
        taken = self._by_key()
        inserted: set[str] = set()
        for event, message, actor in zip(events, messages, actors, strict=True):
            if event.key in taken:
                continue
            self.events[event.id] = Event(copy.deepcopy(event.state))
            taken[event.key] = event
            self.messages.append(message)
            self.audit.append((event.id, AuditNote(actor, RECORD, RECORDED_CHANGES)))
            inserted.add(event.id)
        return inserted

    async def find_by_keys(self, keys: Sequence[Key]) -> dict[Key, Event]:
        taken = self._by_key()
        return {key: Event(copy.deepcopy(taken[key].state)) for key in keys if key in taken}

    async def get(self, event_id: uuid.UUID) -> Event | None:
        found = self.events.get(str(event_id))
        return Event(copy.deepcopy(found.state)) if found else None

    async def list(
        self, where: EventFilter, *, limit: int, after: uuid.UUID | None
    ) -> tuple[list[Event], uuid.UUID | None]:
        chosen = [
            e
            for e in sorted(self.events.values(), key=lambda e: uuid.UUID(e.id))
            if (after is None or uuid.UUID(e.id) > after)
            and (where.status is None or e.status == where.status)
            and (where.type is None or e.state["type"] == where.type)
            and (where.country is None or where.country in e.state["countries"])
        ]
        page = chosen[:limit]
        return page, uuid.UUID(page[-1].id) if len(chosen) > limit else None

    async def change(self, event_id: uuid.UUID, decide: Decide) -> Event | None:
        event = await self.get(event_id)
        if event is None:
            return None
        change = decide(event)  # raising leaves the stored event as it was: the transaction rolls back
        if change is not None:
            self.events[event.id] = Event(copy.deepcopy(event.state))
            self.messages.append(change.message)
            self.audit.append((event.id, change.audit))
        return event

    @staticmethod
    def is_row_error(exc: BaseException) -> bool:
        return isinstance(exc, ValueError)
