"""The event store on SQLAlchemy Core: every statement on the events table for SQLite, and for
PostgreSQL's reads and changes (its creates take `adapters.postgres`). No ORM identity map."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from common.db import json_list_holds
from common.outbox import OutboxMessage, stage
from sqlalchemy import ColumnElement, Select, and_, insert, select, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events.adapters.tables import audit_log, events, outbox
from events.application.ports import AUDITED_ENTITY, RECORD, RECORDED_CHANGES, Actor, AuditNote, Decide, EventFilter
from events.domain.event import Event, Key
from events.domain.model import CONTENT_FIELDS

_UNIQUE = ["organizer_kind", "organizer_code", "external_ref"]


def _iso(value: datetime) -> str:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _date(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def event_of(row: Mapping[Any, Any]) -> Event:
    """The event of a stored row: its public state (the API resource and the message `data`), JSON-ready."""
    content = {name: row[name] for name in CONTENT_FIELDS}
    content["start_date"] = _date(content["start_date"])
    content["end_date"] = _date(content["end_date"])
    return Event(
        {
            "id": str(row["id"]),
            "organizer": {"kind": row["organizer_kind"], "code": row["organizer_code"]},
            "external_ref": row["external_ref"],
            **content,
            "status": row["status"],
            "version": row["version"],
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
        }
    )


def row_of(event: Event) -> dict[str, Any]:
    """The column values of an event."""
    state = event.state
    return {
        "id": uuid.UUID(state["id"]),
        "organizer_kind": state["organizer"]["kind"],
        "organizer_code": state["organizer"]["code"],
        "external_ref": state["external_ref"],
        **{name: state[name] for name in CONTENT_FIELDS},
        "start_date": date.fromisoformat(state["start_date"]),
        "end_date": date.fromisoformat(state["end_date"]),
        "status": state["status"],
        "version": state["version"],
        "created_at": datetime.fromisoformat(state["created_at"]),
        "updated_at": datetime.fromisoformat(state["updated_at"]),
    }


def audit_row(event_id: str, note: AuditNote, at: datetime) -> dict[str, Any]:
    """The column values of an event's audit entry (`common.audit.audit_table`)."""
    return {
        "at": at,
        "actor_sub": note.actor.sub[:300],
        "actor_kind": note.actor.org_kind,
        "actor_code": note.actor.org_code,
        "action": note.action,
        "entity": AUDITED_ENTITY,
        "entity_id": event_id,
        "changes": note.changes,
    }


_INSERT_NEW = sqlite.insert(events).on_conflict_do_nothing(index_elements=_UNIQUE).returning(events.c.id)


class SqlEventStore:
    """`EventStore` through SQLAlchemy sessions; committing a session that staged messages wakes the
    relay (`common.outbox.install_wakeup`)."""

    # SQLite has one writer at a time: a second group in flight would only wait for the lock.
    concurrent_writes = 1
    dialect = "sqlite"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, topic: str) -> None:
        self.sessions = sessions
        self.topic = topic

    async def close(self) -> None:
        """Nothing of its own to close: the sessions are the runtime's."""

    async def add_new(
        self, events: Sequence[Event], messages: Sequence[OutboxMessage], actors: Sequence[Actor], *, now: datetime
    ) -> set[str]:
        if not events:
            return set()
        async with self.sessions() as session, session.begin():
            result = await session.execute(_INSERT_NEW, [row_of(event) for event in events])
            inserted = {str(r[0]) for r in result.all()}
            written = [(e, m, a) for e, m, a in zip(events, messages, actors, strict=True) if e.id in inserted]
            await stage(session, outbox, [m for _e, m, _a in written], self.topic)
            if written:
                notes = [(e.id, AuditNote(a, RECORD, RECORDED_CHANGES)) for e, _m, a in written]
                await session.execute(insert(audit_log), [audit_row(i, note, now) for i, note in notes])
        return inserted

    async def find_by_keys(self, keys: Sequence[Key]) -> dict[Key, Event]:
        found: dict[Key, Event] = {}
        c = events.c
        async with self.sessions() as session:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                stmt = select(events).where(tuple_(c.organizer_kind, c.organizer_code, c.external_ref).in_(chunk))
                for row in (await session.execute(stmt)).mappings():
                    event = event_of(row)
                    found[event.key] = event
        return found

    async def get(self, event_id: uuid.UUID) -> Event | None:
        async with self.sessions() as session:
            row = (await session.execute(select(events).where(events.c.id == event_id))).mappings().first()
        return event_of(row) if row else None

    async def list(
        self, where: EventFilter, *, limit: int, after: uuid.UUID | None
    ) -> tuple[list[Event], uuid.UUID | None]:
        c = events.c
        stmt: Select[Any] = select(events).order_by(c.id).limit(limit + 1)
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            conditions.append(c.id > after)
        if where.organizer_kind is not None:
            conditions.append(c.organizer_kind == where.organizer_kind)
        if where.organizer_code is not None:
            conditions.append(c.organizer_code == where.organizer_code)
        if where.host_province is not None:
            conditions.append(c.host_province == where.host_province)
        if where.type is not None:
            conditions.append(c.type == where.type)
        if where.status is not None:
            conditions.append(c.status == where.status)
        if where.start_from is not None:
            conditions.append(c.start_date >= where.start_from)
        if where.start_to is not None:
            conditions.append(c.start_date <= where.start_to)
        if where.country is not None:
            conditions.append(json_list_holds(c.countries, where.country, dialect=self.dialect))
        if conditions:
            stmt = stmt.where(and_(*conditions))
        async with self.sessions() as session:
            rows = [event_of(r) for r in (await session.execute(stmt)).mappings()]
        next_after = uuid.UUID(rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit], next_after

    async def change(self, event_id: uuid.UUID, decide: Decide) -> Event | None:
        async with self.sessions() as session, session.begin():
            # FOR UPDATE is ignored on SQLite, which serialises writers anyway.
            stmt = select(events).where(events.c.id == event_id).with_for_update()
            row = (await session.execute(stmt)).mappings().first()
            if row is None:
                return None
            event = event_of(row)
            change = decide(event)
            if change is not None:
                values = row_of(event)
                del values["id"], values["created_at"]
                await session.execute(update(events).where(events.c.id == event_id).values(**values))
                await stage(session, outbox, [change.message], self.topic)
                await session.execute(insert(audit_log).values(audit_row(event.id, change.audit, values["updated_at"])))
            return event

    @staticmethod
    def is_row_error(exc: BaseException) -> bool:
        return isinstance(exc, IntegrityError | DataError | ValueError)
