"""The event store on PostgreSQL: creates through raw asyncpg (`adapters.pg`) in one statement per
group or batch; reads and changes as in `SqlEventStore`.

SQLAlchemy's statement and result processing were most of a single POST's CPU (bench/events/README.md),
so new events, their outbox rows and their audit entries go in ONE statement (data-modifying CTEs): PostgreSQL runs a
single statement atomically, the same all-or-nothing transaction as BEGIN/INSERT/INSERT/COMMIT in one
round trip. A concurrent insert of the same key waits on the unique index for the other statement,
then does nothing (and the caller reads the winner).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from common.audit import AUDIT_TABLE
from common.outbox import OutboxMessage, outbox_insert
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from events.adapters.pg import PgPool
from events.adapters.repository import SqlEventStore, event_of
from events.adapters.tables import events
from events.application.ports import AUDITED_ENTITY, RECORD, Actor
from events.domain.event import Event, Key

# Groups of new events written at once: one statement in PostgreSQL while the next group gathers.
CREATES_IN_FLIGHT = 2

_EVENT_COLUMNS = [c.name for c in events.c]
_NEW_COLUMNS = [name for name in _EVENT_COLUMNS if name not in ("created_at", "updated_at")]
_JSONB = frozenset({"countries", "partner_org_ids", "fields", "target_groups"})
# Parameters travel as JSON-ready values (ids, dates and lists as text), cast by PostgreSQL.
_PG_TYPES = {"id": "uuid", "start_date": "date", "end_date": "date", "participants": "int4", "version": "int4"}
_PG_TYPES |= {"foreign_participants": "int4", "papers": "int4", "flagship": "bool"}
_ON_CONFLICT = "ON CONFLICT (organizer_kind, organizer_code, external_ref) DO NOTHING RETURNING id"
# The outbox values of each message, in `OUTBOX_COLUMNS` order but for the topic and the time.
_MESSAGE_PARAMS = ["message_id", "message_key", "payload"]
# Who recorded each event, for its audit entry (`common.audit.audit_table`): per row, since the single
# creates of one group come from different bodies.
_ACTOR_PARAMS = ["actor_sub", "actor_kind", "actor_code"]

# Each column travels as one parameter (no JSON document for PostgreSQL to parse: that halved
# PostgreSQL's CPU per batch), the events are inserted unless their key exists, and exactly the
# inserted ones get their outbox rows, in order. Text columns travel packed: the values joined by a
# separator (U+001F) that validation keeps out of every value (no control characters in text, JSON
# escapes them), None as U+001E, split by `string_to_array`; asyncpg's array encoder checks every
# element against two ABCs, which cost more than the rest of the encoding. Should a value ever hold
# either character, the statement takes plain arrays instead.
_SEP, _NULL = "\x1f", "\x1e"
_TEXT_PARAMS = [n for n in _NEW_COLUMNS if _PG_TYPES.get(n) not in ("int4", "bool")] + _MESSAGE_PARAMS + _ACTOR_PARAMS
_OTHER_PARAMS = [n for n in _NEW_COLUMNS if _PG_TYPES.get(n) in ("int4", "bool")]


def _bulk_statement(packed: bool, headers_per_row: bool) -> str:
    """`headers_per_row`: each message its own headers (grouped single creates carry each request's
    trace context), else one value for all (a batch, or a group whose headers are all alike)."""
    text_params = [*_TEXT_PARAMS, "headers"] if headers_per_row else _TEXT_PARAMS
    n_all = len(text_params) + len(_OTHER_PARAMS)
    text = (
        (f"string_to_array(${i + 1}, chr(31), chr(30))" if packed else f"${i + 1}::text[]")
        for i in range(len(text_params))
    )
    other = (f"${len(text_params) + i + 1}::{_PG_TYPES[n]}[]" for i, n in enumerate(_OTHER_PARAMS))
    # Then the scalars: the topic, the headers (unless per row), the time.
    headers, now = ("input.headers", f"${n_all + 2}") if headers_per_row else (f"${n_all + 2}", f"${n_all + 3}")
    outbox_values = ["input.message_id", f"${n_all + 1}", "input.message_key", "input.payload", headers, now]
    audit_values = [now, *(f"input.{n}" for n in _ACTOR_PARAMS), f"'{RECORD}'", f"'{AUDITED_ENTITY}'", "input.id"]
    return (
        f"WITH input AS (SELECT * FROM unnest({', '.join([*text, *other])}) "
        f"WITH ORDINALITY AS t({', '.join([*text_params, *_OTHER_PARAMS])}, n)), "
        f"inserted AS (INSERT INTO events ({', '.join(_NEW_COLUMNS)}, created_at, updated_at) "
        f"SELECT {', '.join(_select(n) for n in _NEW_COLUMNS)}, {now}, {now} FROM input "
        f"ORDER BY n {_ON_CONFLICT}), "
        # Run to completion although the main statement does not read it (as every data-modifying WITH).
        f"audited AS (INSERT INTO {AUDIT_TABLE} (at, {', '.join(_ACTOR_PARAMS)}, action, entity, entity_id, changes) "
        f"SELECT {', '.join(audit_values)}, '{{}}'::json "  # RECORDED_CHANGES
        "FROM input JOIN inserted ON inserted.id = input.id::uuid ORDER BY input.n) "
        f"{outbox_insert(outbox_values)} "
        "FROM input JOIN inserted ON inserted.id = input.id::uuid ORDER BY input.n RETURNING key"
    )


def _select(name: str) -> str:
    if name in _JSONB:
        return f"{name}::jsonb"
    kind = _PG_TYPES.get(name)
    return f"{name}::{kind}" if kind in ("date", "uuid") else name


# (packed, headers per row) -> statement
_PG_BULK = {(p, h): _bulk_statement(p, h) for p in (True, False) for h in (True, False)}


def _pack(values: list[Any]) -> str | None:
    """The values joined by `_SEP` (None as `_NULL`), or None when a value holds either character."""
    nulls = values.count(None)
    joined = _SEP.join([_NULL if v is None else v for v in values] if nulls else values)
    if joined and joined.count(_SEP) == len(values) - 1 and joined.count(_NULL) == nulls:
        return joined
    return None


async def insert_new(
    connection: asyncpg.Connection,
    events: Sequence[Event],
    messages: Sequence[OutboxMessage],
    actors: Sequence[Actor],
    *,
    topic: str,
    now: datetime,
) -> set[str]:
    """Insert the events whose key is not taken, each with its message and its audit entry by its actor
    (same order); the ids inserted."""
    if not events:
        return set()
    states = [event.state for event in events]
    text: list[list[Any]] = []
    for name in _TEXT_PARAMS:
        if name == "organizer_kind":
            text.append([s["organizer"]["kind"] for s in states])
        elif name == "organizer_code":
            text.append([s["organizer"]["code"] for s in states])
        elif name in _JSONB:  # mostly empty lists: their JSON without a serialiser call
            text.append(["[]" if (v := s[name]) == [] else to_json(v).decode() for s in states])
        elif name == "message_id":
            text.append([m.event_id for m in messages])
        elif name == "message_key":
            text.append([m.key for m in messages])
        elif name == "payload":
            text.append([m.payload for m in messages])
        elif name == "actor_sub":
            text.append([a.sub[:300] for a in actors])
        elif name == "actor_kind":
            text.append([a.org_kind for a in actors])
        elif name == "actor_code":
            text.append([a.org_code for a in actors])
        else:
            text.append([s[name] for s in states])
    headers = messages[0].headers
    per_row = any(m.headers != headers for m in messages)
    if per_row:
        text.append([m.headers for m in messages])
    other = [[s[name] for s in states] for name in _OTHER_PARAMS]
    packed = [_pack(values) for values in text]
    scalar = () if per_row else (headers,)
    if all(p is not None for p in packed):
        rows = await connection.fetch(_PG_BULK[True, per_row], *packed, *other, topic, *scalar, now)
    else:
        rows = await connection.fetch(_PG_BULK[False, per_row], *text, *other, topic, *scalar, now)
    return {r[0] for r in rows}


_PG_FIND_MANY = (
    "SELECT e.* FROM unnest($1::text[], $2::text[], $3::text[]) AS k(kind, code, ref) JOIN events e "
    "ON e.organizer_kind = k.kind AND e.organizer_code = k.code AND e.external_ref = k.ref"
)


class PostgresEventStore(SqlEventStore):
    """`EventStore` on PostgreSQL. Its creates commit outside SQLAlchemy's sessions, so it wakes the
    relay itself (`wake`: `OutboxRelay.wake`, which the sessions' commits call too)."""

    concurrent_writes = CREATES_IN_FLIGHT
    dialect = "postgresql"  # `countries @> '["DE"]'` for the country filter, which the GIN index serves

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: PgPool,
        *,
        topic: str,
        wake: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(sessions, topic=topic)
        self.pool = pool
        self.wake = wake or (lambda: None)

    async def add_new(
        self,
        events: Sequence[Event],
        messages: Sequence[OutboxMessage],
        actors: Sequence[Actor],
        *,
        now: datetime,
    ) -> set[str]:
        async with self.pool.connection() as connection:
            inserted = await insert_new(connection, events, messages, actors, topic=self.topic, now=now)
        if inserted:
            self.wake()
        return inserted

    async def find_by_keys(self, keys: Sequence[Key]) -> dict[Key, Event]:
        async with self.pool.connection() as connection:
            rows = await connection.fetch(
                _PG_FIND_MANY, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
            )
        found = (event_of(row) for row in rows)
        return {event.key: event for event in found}

    @staticmethod
    def is_row_error(exc: BaseException) -> bool:
        """A value PostgreSQL refuses (class 22, 23, 54) or asyncpg cannot encode, or a deadlock
        between groups; not a database that is down, starting, full or read-only (that fails a whole
        group at once)."""
        row_errors = (
            asyncpg.DataError,
            asyncpg.IntegrityConstraintViolationError,
            asyncpg.ProgramLimitExceededError,
            asyncpg.TransactionRollbackError,
            ValueError,
        )
        return isinstance(exc, row_errors)

    async def close(self) -> None:
        await self.pool.close()
