"""Every query on the events table: Core statements (no ORM identity map on the hot paths)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from events.adapters.tables import events
from events.domain.model import CONTENT_FIELDS

Key = tuple[str, str, str]  # organizer kind, organizer code, external_ref
_UNIQUE = ["organizer_kind", "organizer_code", "external_ref"]


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): ids sort by creation, which keeps the primary-key
    index append-only and gives list pagination a stable, meaningful order."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62
    return uuid.UUID(int=value | (rand & ((1 << 62) - 1)))


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


def encode_cursor(event_id: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(str(event_id)).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """The id after which the next page starts; ValueError when the cursor is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a valid cursor") from exc


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


# -- PostgreSQL single-statement create -------------------------------------------------------------
# The event row and its outbox row in ONE statement (a data-modifying CTE): PostgreSQL runs a single
# statement atomically, so this is the same all-or-nothing transaction as BEGIN/INSERT/INSERT/COMMIT
# in one round trip instead of four, sent straight through asyncpg (SQLAlchemy's statement and
# result processing were most of the single-POST CPU; bench/events/README.md).
_EVENT_COLUMNS = [c.name for c in events.c]
_CASTS = {"countries": "::text::jsonb", "partner_org_ids": "::text::jsonb", "fields": "::text::jsonb"}
_CASTS["target_groups"] = "::text::jsonb"
_N = len(_EVENT_COLUMNS)
_PG_RECORD = (
    f"WITH inserted AS (INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ("
    + ", ".join(f"${i + 1}{_CASTS.get(name, '')}" for i, name in enumerate(_EVENT_COLUMNS))
    + ") ON CONFLICT (organizer_kind, organizer_code, external_ref) DO NOTHING RETURNING id) "
    "INSERT INTO outbox (event_id, topic, key, payload, headers, created_at) "
    f"SELECT ${_N + 1}, ${_N + 2}, ${_N + 3}, ${_N + 4}, ${_N + 5}, ${_N + 6} FROM inserted RETURNING id"
)


async def record_new_postgres(engine: AsyncEngine, values: Mapping[str, Any], outbox_row: Mapping[str, Any]) -> bool:
    """Insert the event and its outbox row unless the organizer already has this external_ref.
    A concurrent insert of the same key waits for the other statement, then counts as existing."""
    params = [json.dumps(values[name]) if name in _CASTS else values[name] for name in _EVENT_COLUMNS]
    params += [outbox_row[k] for k in ("event_id", "topic", "key", "payload", "headers", "created_at")]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        inserted = await driver.fetchval(_PG_RECORD, *params)
    return inserted is not None


# -- PostgreSQL bulk create -------------------------------------------------------------------------
# A batch in one statement: the rows travel as ONE JSON document (serialised by the C encoder,
# parsed by PostgreSQL) instead of 23 bound values per row; the events are inserted unless their key
# exists, and exactly the inserted ones get their outbox rows, in batch order.
_PG_TYPES = {
    "id": "uuid",
    "start_date": "date",
    "end_date": "date",
    "participants": "int",
    "foreign_participants": "int",
    "papers": "int",
    "flagship": "bool",
    "version": "int",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    **{name: "jsonb" for name in _CASTS},
}
_RECORD = ", ".join(f"{name} {_PG_TYPES.get(name, 'text')}" for name in _EVENT_COLUMNS)
_PG_BULK = (
    f"WITH input AS (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::text::jsonb) AS ({_RECORD}, "
    f"message_id text, payload text)) WITH ORDINALITY AS t({', '.join(_EVENT_COLUMNS)}, message_id, payload, n)), "
    f"inserted AS (INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) SELECT {', '.join(_EVENT_COLUMNS)} FROM input "
    "ORDER BY n ON CONFLICT (organizer_kind, organizer_code, external_ref) DO NOTHING RETURNING id) "
    "INSERT INTO outbox (event_id, topic, key, payload, headers, created_at) "
    "SELECT input.message_id, $2, input.id::text, input.payload, $3, $4 "
    "FROM input JOIN inserted ON inserted.id = input.id ORDER BY input.n RETURNING key"
)


async def record_many_postgres(
    engine: AsyncEngine,
    rows: Sequence[Mapping[str, Any]],
    messages: Sequence[tuple[str, str]],
    *,
    topic: str,
    headers: str,
    now: datetime,
) -> set[str]:
    """Insert the new events of `rows` with their messages (`(message id, payload)` per row, same
    order); returns the ids of the events inserted (the others already existed)."""
    if not rows:
        return set()
    document = json.dumps(
        [{**row, "message_id": message[0], "payload": message[1]} for row, message in zip(rows, messages, strict=True)],
        default=_json_value,
        ensure_ascii=False,
    )
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        inserted = await driver.fetch(_PG_BULK, document, topic, headers, now)
    return {r[0] for r in inserted}


def _json_value(value: object) -> str:
    if isinstance(value, uuid.UUID | date | datetime):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
