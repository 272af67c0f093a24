"""Every query on the events table: Core statements (no ORM identity map on the hot paths)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from common.pagination import decode_cursor as decode_cursor  # re-exported for the use cases
from common.pagination import encode_cursor
from pydantic_core import to_json
from sqlalchemy import Select, and_, exists, func, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from events.adapters.tables import events
from events.domain.model import CONTENT_FIELDS

Key = tuple[str, str, str]  # organizer kind, organizer code, external_ref
_UNIQUE = ["organizer_kind", "organizer_code", "external_ref"]


def _iso(value: datetime) -> str:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def state_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public state (the API resource and the message `data`) of a stored row, JSON-ready."""
    return {
        "id": str(row["id"]),
        "organizer": {"kind": row["organizer_kind"], "code": row["organizer_code"]},
        "external_ref": row["external_ref"],
        **content_of(row),
        "status": row["status"],
        "version": row["version"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The client-supplied content of a stored row, in the same shape as `EventContent.canonical()`."""
    content = {name: row[name] for name in CONTENT_FIELDS}
    content["start_date"] = _date(content["start_date"])
    content["end_date"] = _date(content["end_date"])
    return content


def _date(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def row_values(
    *,
    event_id: uuid.UUID,
    organizer_kind: str,
    organizer_code: str,
    external_ref: str,
    content: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Column values of a new event from its canonical content (dates as ISO strings)."""
    return {
        "id": event_id,
        "organizer_kind": organizer_kind,
        "organizer_code": organizer_code,
        "external_ref": external_ref,
        **content,
        "start_date": date.fromisoformat(content["start_date"]),
        "end_date": date.fromisoformat(content["end_date"]),
        "status": "active",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _insert_new(dialect: str) -> Any:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(events).on_conflict_do_nothing(index_elements=_UNIQUE)


_INSERT_RETURNING_ID = {d: _insert_new(d).returning(events.c.id) for d in ("postgresql", "sqlite")}
_INSERT_RETURNING_KEY = {
    d: _insert_new(d).returning(events.c.organizer_kind, events.c.organizer_code, events.c.external_ref)
    for d in ("postgresql", "sqlite")
}


def _dialect(session: AsyncSession) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


async def insert_if_new(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the organizer already has this external_ref; on PostgreSQL a concurrent insert of
    the same key waits for the other transaction and then reports the row as existing."""
    inserted = await session.scalar(_INSERT_RETURNING_ID[_dialect(session)], values)
    return inserted is not None


async def insert_many_if_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[Key]:
    """Bulk insert; returns the keys actually inserted (the others already existed)."""
    if not rows:
        return set()
    result = await session.execute(_INSERT_RETURNING_KEY[_dialect(session)], list(rows))
    return {(r[0], r[1], r[2]) for r in result.all()}


async def find_by_key(session: AsyncSession, key: Key) -> dict[str, Any] | None:
    c = events.c
    stmt = select(events).where(c.organizer_kind == key[0], c.organizer_code == key[1], c.external_ref == key[2])
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def find_by_keys(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    wanted = list(keys)
    c = events.c
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        stmt = select(events).where(tuple_(c.organizer_kind, c.organizer_code, c.external_ref).in_(chunk))
        for row in (await session.execute(stmt)).mappings():
            found[(row["organizer_kind"], row["organizer_code"], row["external_ref"])] = dict(row)
    return found


async def get(session: AsyncSession, event_id: uuid.UUID, *, for_update: bool = False) -> dict[str, Any] | None:
    stmt = select(events).where(events.c.id == event_id)
    if for_update:
        stmt = stmt.with_for_update()  # ignored on SQLite, which serialises writers anyway
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def update_event(session: AsyncSession, event_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    stmt = update(events).where(events.c.id == event_id).values(**values).returning(*events.c)
    return dict((await session.execute(stmt)).mappings().one())


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


async def list_events(
    session: AsyncSession, where: EventFilter, *, limit: int, after: uuid.UUID | None
) -> tuple[list[dict[str, Any]], str | None]:
    c = events.c
    stmt: Select[Any] = select(events).order_by(c.id).limit(limit + 1)
    conditions = []
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
        if _dialect(session) == "postgresql":
            conditions.append(c.countries.op("@>")(func.cast(literal(f'["{where.country}"]'), postgresql.JSONB)))
        else:
            each = func.json_each(c.countries).table_valued("value")
            conditions.append(exists(select(literal(1)).select_from(each).where(each.c.value == where.country)))
    if conditions:
        stmt = stmt.where(and_(*conditions))
    rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
    next_cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


# -- PostgreSQL: creates through raw asyncpg connections (events.adapters.pg) --------------------------
# Events and their outbox rows in ONE statement (a data-modifying CTE, below): PostgreSQL runs a single
# statement atomically, so this is the same all-or-nothing transaction as BEGIN/INSERT/INSERT/COMMIT
# in one round trip. A concurrent insert of the same key waits on the unique index for the other
# statement, then does nothing (and the caller reads the winner). SQLAlchemy's statement and result
# processing were most of the single-POST CPU (bench/events/README.md). Single creates use it too, in
# groups (application/group_commit.py).
_EVENT_COLUMNS = [c.name for c in events.c]
_NEW_COLUMNS = [name for name in _EVENT_COLUMNS if name not in ("status", "version", "created_at", "updated_at")]
_JSONB = frozenset({"countries", "partner_org_ids", "fields", "target_groups"})
# Parameters travel as JSON-ready values (ids, dates and lists as text), cast by PostgreSQL.
_PG_TYPES = {"id": "uuid", "start_date": "date", "end_date": "date", "participants": "int4"}
_PG_TYPES |= {"foreign_participants": "int4", "papers": "int4", "flagship": "bool"}
_OUTBOX_COLUMNS = "INSERT INTO outbox (event_id, topic, key, payload, headers, created_at) "
_ON_CONFLICT = "ON CONFLICT (organizer_kind, organizer_code, external_ref) DO NOTHING RETURNING id"


def new_state(
    event_id: str, kind: str, code: str, external_ref: str, content: Mapping[str, Any], stamp: str
) -> dict[str, Any]:
    """The public state of an event about to be inserted (what `state_of` reads back from its row);
    `content` is canonical (`EventContent.canonical()`), `stamp` the ISO time of creation."""
    return {
        "id": event_id,
        "organizer": {"kind": kind, "code": code},
        "external_ref": external_ref,
        **content,
        "status": "active",
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }


# A batch in one statement: each column travels as one parameter (no JSON document for PostgreSQL to
# parse: that halved PostgreSQL's CPU per batch), the events are inserted unless their key exists,
# and exactly the inserted ones get their outbox rows, in batch order. Text columns travel packed:
# the values joined by a separator (U+001F) that validation keeps out of every value (no control
# characters in text, JSON escapes them), None as U+001E, split by `string_to_array`; asyncpg's array
# encoder checks every element against two ABCs, which cost more than the rest of the encoding.
# Should a value ever hold either character, the batch goes as plain arrays instead.
_SEP, _NULL = "\x1f", "\x1e"
_TEXT_PARAMS = [n for n in _NEW_COLUMNS if _PG_TYPES.get(n) not in ("int4", "bool")] + ["message_id", "payload"]
_OTHER_PARAMS = [n for n in _NEW_COLUMNS if _PG_TYPES.get(n) in ("int4", "bool")]


def _bulk_statement(packed: bool, headers_per_row: bool) -> str:
    """The batch statement; `headers_per_row`: each message its own headers (the grouped single
    creates carry each request's trace context), else one value for all (a batch request)."""
    text_params = [*_TEXT_PARAMS, "headers"] if headers_per_row else _TEXT_PARAMS
    n_all = len(text_params) + len(_OTHER_PARAMS)
    text = (
        (f"string_to_array(${i + 1}, chr(31), chr(30))" if packed else f"${i + 1}::text[]")
        for i in range(len(text_params))
    )
    other = (f"${len(text_params) + i + 1}::{_PG_TYPES[n]}[]" for i, n in enumerate(_OTHER_PARAMS))
    # Then the scalars: the topic, the headers (unless per row), the time.
    headers, now = ("input.headers", f"${n_all + 2}") if headers_per_row else (f"${n_all + 2}", f"${n_all + 3}")
    return (
        f"WITH input AS (SELECT * FROM unnest({', '.join([*text, *other])}) "
        f"WITH ORDINALITY AS t({', '.join([*text_params, *_OTHER_PARAMS])}, n)), "
        f"inserted AS (INSERT INTO events ({', '.join(_NEW_COLUMNS)}, status, version, created_at, updated_at) "
        f"SELECT {', '.join(_select(n) for n in _NEW_COLUMNS)}, 'active', 1, {now}, {now} FROM input "
        f"ORDER BY n {_ON_CONFLICT}) "
        f"{_OUTBOX_COLUMNS}SELECT input.message_id, ${n_all + 1}, input.id, input.payload, {headers}, {now} "
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


async def record_many_postgres(
    connection: asyncpg.Connection,
    states: Sequence[Mapping[str, Any]],
    messages: Sequence[tuple[str, str]],
    *,
    topic: str,
    headers: str | Sequence[str],
    now: datetime,
) -> set[str]:
    """Insert the new events of `states` with their messages (`(id, payload)` per state, same order)
    and `headers` (one for all, or one per message); returns the ids of the events inserted (the
    others' keys already existed)."""
    if not states:
        return set()
    text: list[list[Any]] = []
    for name in _TEXT_PARAMS:
        if name == "organizer_kind":
            text.append([s["organizer"]["kind"] for s in states])
        elif name == "organizer_code":
            text.append([s["organizer"]["code"] for s in states])
        elif name in _JSONB:  # mostly empty lists: their JSON without a serialiser call
            text.append(["[]" if (v := s[name]) == [] else to_json(v).decode() for s in states])
        elif name == "message_id":
            text.append([m[0] for m in messages])
        elif name == "payload":
            text.append([m[1] for m in messages])
        else:
            text.append([s[name] for s in states])
    per_row = not isinstance(headers, str)
    if per_row:
        text.append(list(headers))
    other = [[s[name] for s in states] for name in _OTHER_PARAMS]
    packed = [_pack(values) for values in text]
    scalar = () if per_row else (headers,)
    if all(p is not None for p in packed):
        rows = await connection.fetch(_PG_BULK[True, per_row], *packed, *other, topic, *scalar, now)
    else:
        rows = await connection.fetch(_PG_BULK[False, per_row], *text, *other, topic, *scalar, now)
    return {r[0] for r in rows}


_PG_FIND = "SELECT * FROM events WHERE organizer_kind = $1 AND organizer_code = $2 AND external_ref = $3"
_PG_FIND_MANY = (
    "SELECT e.* FROM unnest($1::text[], $2::text[], $3::text[]) AS k(kind, code, ref) JOIN events e "
    "ON e.organizer_kind = k.kind AND e.organizer_code = k.code AND e.external_ref = k.ref"
)


async def find_by_key_postgres(connection: asyncpg.Connection, key: Key) -> dict[str, Any] | None:
    row = await connection.fetchrow(_PG_FIND, *key)
    return dict(row) if row is not None else None


async def find_by_keys_postgres(connection: asyncpg.Connection, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
    """The stored rows of `keys` (those that exist), in one statement."""
    rows = await connection.fetch(_PG_FIND_MANY, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    return {(r["organizer_kind"], r["organizer_code"], r["external_ref"]): dict(r) for r in rows}
