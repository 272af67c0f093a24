"""What the use cases need from storage: one small interface, whatever the database.

Its implementations are in `events.adapters` (PostgreSQL with raw asyncpg on the create paths,
SQLite through SQLAlchemy) and under the tests (in memory); the composition root picks one.
Every write is one transaction holding the events, their outbox messages and their entries in the
audit record (`common.audit`), and wakes the relay once it is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from common.outbox import OutboxMessage

from events.domain.event import Event, Key
from events.domain.model import Organizer

# What the audit entries of this store name as their entity (`GET /v1/events/audit?entity=event`).
AUDITED_ENTITY = "event"
# A new event's entry: this action, by the body that recorded it, with `RECORDED_CHANGES`.
RECORD = "record"
# Not in an entry's changes: the record's own bookkeeping (each entry has its time and its order).
NOT_AUDITED = frozenset({"version", "created_at", "updated_at"})


@dataclass(frozen=True)
class EventFilter:
    organizer_kind: str | None = None
    organizer_code: str | None = None
    host_province: str | None = None
    country: str | None = None
    type: str | None = None
    start_from: date | None = None
    start_to: date | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """The calling body, from the token: `sub` is its client, `org_kind:org_code` the acting body."""

    org_kind: str
    org_code: str
    is_admin: bool
    sub: str

    @property
    def organizer(self) -> Organizer:
        return Organizer.model_construct(kind=self.org_kind, code=self.org_code)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AuditNote:
    """An event's entry in the audit record: who acted, what they did (`record`, `update`, `cancel`) and
    the fields it changed, `{field: {"old": …, "new": …}}` (`common.audit.field_changes`)."""

    actor: Actor
    action: str
    changes: dict[str, dict[str, Any]]


# A new event's entry names who recorded it and lists no fields: its values are the event's version 1,
# which its current state and the `old` values of its later entries give back. Writing every field once
# more cost the batch road about a third of its rate (PostgreSQL building and storing the JSON per event).
RECORDED_CHANGES: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True, slots=True)
class Change:
    """A change `Decide` made: the message announcing it and its audit entry, written with it."""

    message: OutboxMessage
    audit: AuditNote


# Given the stored event (locked until the transaction ends), the change it makes, or None when
# nothing changes; may raise to refuse the change.
Decide = Callable[[Event], Change | None]


class EventStore(Protocol):
    # How many writes of new events may run at once (group commit's groups in flight).
    concurrent_writes: int

    async def add_new(
        self, events: Sequence[Event], messages: Sequence[OutboxMessage], actors: Sequence[Actor], *, now: datetime
    ) -> set[str]:
        """Insert the events whose key is not taken, each with its message and its audit entry (`RECORD`
        by its actor, with `RECORDED_CHANGES`; all three in the same order), in one transaction; the
        ids of those inserted."""
        ...

    async def find_by_keys(self, keys: Sequence[Key]) -> Mapping[Key, Event]:
        """The stored events of those `keys` that exist."""
        ...

    async def get(self, event_id: uuid.UUID) -> Event | None: ...

    async def list(
        self, where: EventFilter, *, limit: int, after: uuid.UUID | None
    ) -> tuple[list[Event], uuid.UUID | None]:
        """A page in id order, and the id after which the next one starts (None: the last page)."""
        ...

    async def change(self, event_id: uuid.UUID, decide: Decide) -> Event | None:
        """Read the event under a lock, let `decide` change it, and write its new state with the
        message and the audit entry in one transaction; the event as it is then (None: there is no such event)."""
        ...

    @staticmethod
    def is_row_error(exc: BaseException) -> bool:
        """Whether `exc` may be one row's doing (a value the database refuses), so a group of writes it
        failed is tried again one by one; not a database that is down."""
        ...
