"""The talent store's writes on PostgreSQL: a sync's people, posts, outbox rows and audit entries in a
few multi-row statements per chunk (each column one array parameter, spread by `unnest`), on one asyncpg
connection held for the whole sync under a session advisory lock on the society, so two syncs of the
same society run one after the other. Reads are `SqlTalentStore`'s."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from common.audit import audit_values
from common.outbox import OUTBOX_COLUMNS, outbox_rows, outbox_unnest_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from talent.adapters.sql_store import SqlTalentStore, person_values, post_values
from talent.application.ports import Changes, Known
from talent.domain.model import Person

_KNOWN = "SELECT id, society, external_id, version, content_hash, deleted FROM persons"
_KNOWN_MANY = (
    "SELECT p.id, p.society, p.external_id, p.version, p.content_hash, p.deleted "
    "FROM unnest($2::text[]) AS k(external_id) JOIN persons p ON p.society = $1 AND p.external_id = k.external_id"
)
_LOCK = "SELECT pg_advisory_lock(hashtextextended($1, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended($1, 0))"

# (column, PostgreSQL type of its array parameter, expression in the SELECT over unnest)
_PERSON_COLUMNS: list[tuple[str, str]] = [
    ("id", "uuid"),
    ("society", "text"),
    ("external_id", "text"),
    ("content_hash", "text"),
    ("version", "int8"),
    ("deleted", "bool"),
    ("name", "text"),
    ("name_en", "text"),
    ("gender", "text"),
    ("birth_year", "int4"),
    ("affiliation", "text"),
    ("email", "text"),
    ("orcid", "text"),
    ("groups", "jsonb"),
    ("country", "text"),
    ("province", "text"),
    ("reserve", "bool"),
    ("fields", "jsonb"),
    ("posts", "jsonb"),
]
_JSON_COLUMNS = frozenset({"groups", "fields", "posts"})


def _unnest(columns: Sequence[tuple[str, str]], offset: int = 0) -> str:
    # jsonb travels as text and is cast per row (asyncpg's jsonb arrays would need a codec of their own).
    params = ", ".join(
        f"${i + 1 + offset}::{'text' if kind == 'jsonb' else kind}[]" for i, (_name, kind) in enumerate(columns)
    )
    return f"unnest({params}) AS u({', '.join(name for name, _kind in columns)})"


def _select(name: str, kind: str) -> str:
    return f"u.{name}::jsonb" if kind == "jsonb" else f"u.{name}"


_N = len(_PERSON_COLUMNS)
_INSERT_PERSONS = (
    f"INSERT INTO persons ({', '.join(n for n, _k in _PERSON_COLUMNS)}, created_at, updated_at) "
    f"SELECT {', '.join(_select(n, k) for n, k in _PERSON_COLUMNS)}, ${_N + 1}, ${_N + 1} "
    f"FROM {_unnest(_PERSON_COLUMNS)}"
)
_SET = ", ".join(f"{n} = {_select(n, k)}" for n, k in _PERSON_COLUMNS if n not in ("id", "society"))
_UPDATE_PERSONS = (
    f"UPDATE persons SET {_SET}, updated_at = ${_N + 1} FROM {_unnest(_PERSON_COLUMNS)} WHERE persons.id = u.id"
)
_POST_COLUMNS = [
    ("person_id", "uuid"),
    ("position", "int4"),
    ("society", "text"),
    ("organization", "text"),
    ("organization_country", "text"),
    ("role", "text"),
    ("start_date", "date"),
    ("end_date", "date"),
]
_INSERT_POSTS = (
    f"INSERT INTO person_posts ({', '.join(n for n, _k in _POST_COLUMNS)}) "
    f"SELECT {', '.join(f'u.{n}' for n, _k in _POST_COLUMNS)} FROM {_unnest(_POST_COLUMNS)}"
)
_DELETE_POSTS = "DELETE FROM person_posts WHERE person_id = ANY($1::uuid[])"
# The outbox's rows and their INSERT are common.outbox's (`outbox_rows`, `outbox_unnest_insert`).
_INSERT_OUTBOX = outbox_unnest_insert()
_AUDIT_COLUMNS = [
    ("actor_sub", "text"),
    ("actor_kind", "text"),
    ("actor_code", "text"),
    ("action", "text"),
    ("entity", "text"),
    ("entity_id", "text"),
    ("changes", "text"),
]
_INSERT_AUDIT = (
    "INSERT INTO audit_log (at, actor_sub, actor_kind, actor_code, action, entity, entity_id, changes) "
    f"SELECT $8, {', '.join(f'u.{n}' for n, _k in _AUDIT_COLUMNS[:-1])}, u.changes::json FROM {_unnest(_AUDIT_COLUMNS)}"
)


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[tuple[str, str]]) -> list[list[Any]]:
    return [
        [orjson.dumps(row[name]).decode() for row in rows] if name in _JSON_COLUMNS else [row[name] for row in rows]
        for name, _kind in names
    ]


def _known(row: asyncpg.Record) -> Known:
    return Known(str(row[0]), row[1], row[2], row[3], row[4], row[5])


class PgWriter:
    """A society's writer on one asyncpg connection, inside a transaction begun anew after each commit."""

    def __init__(self, connection: asyncpg.Connection, society: str, topic: str, wake: Callable[[], None]) -> None:
        self.connection = connection
        self.society = society
        self.topic = topic
        self.wake = wake
        self.transaction: Any = None
        self.staged_messages = False

    async def begin(self) -> None:
        self.transaction = self.connection.transaction()
        await self.transaction.start()

    async def known(self, external_ids: Sequence[str]) -> dict[str, Known]:
        # A join with the ids (an index probe or a hash each): `external_id = ANY($2)` compared every row
        # of the society with every id.
        rows = await self.connection.fetch(_KNOWN_MANY, self.society, list(external_ids))
        return {row[2]: _known(row) for row in rows}

    async def absent(self, present: Collection[str]) -> list[Known]:
        # The society's ids are read and compared with the named ones here, in a set: an anti-join with a
        # 100,000-element array parameter was planned as a nested loop (every pair compared).
        rows = await self.connection.fetch(f"{_KNOWN} WHERE society = $1 AND NOT deleted ORDER BY id", self.society)
        return [_known(row) for row in rows if row[2] not in present]

    async def by_id(self, person_id: uuid.UUID) -> Known | None:
        row = await self.connection.fetchrow(f"{_KNOWN} WHERE id = $1 FOR UPDATE", person_id)
        return _known(row) if row is not None else None

    async def write(self, changes: Changes) -> None:
        now = datetime.now(UTC)
        connection = self.connection
        if changes.created:
            await connection.execute(_INSERT_PERSONS, *self._people(changes.created, now), now)
        rewritten: list[Person] = [*changes.updated, *changes.erased]
        if rewritten:
            await connection.execute(_UPDATE_PERSONS, *self._people(rewritten, now), now)
            await connection.execute(_DELETE_POSTS, [uuid.UUID(p.id) for p in rewritten])
        posts = [row for p in [*changes.created, *changes.updated] for row in post_values(p)]
        if posts:
            await connection.execute(_INSERT_POSTS, *_columns(posts, _POST_COLUMNS))
        if changes.messages:
            rows = outbox_rows(changes.messages, self.topic, now)
            await connection.execute(_INSERT_OUTBOX, *([row[name] for row in rows] for name in OUTBOX_COLUMNS))
            self.staged_messages = True
        if changes.audit:
            entries = [
                audit_values(
                    actor=changes.actor,
                    action=n.action,
                    entity=n.entity,
                    entity_id=n.entity_id,
                    changes=n.changes,
                    at=now,
                )
                for n in changes.audit
            ]
            for entry in entries:
                entry["changes"] = json.dumps(entry["changes"])
            await connection.execute(_INSERT_AUDIT, *[[e[n] for e in entries] for n, _k in _AUDIT_COLUMNS], now)

    @staticmethod
    def _people(people: Sequence[Person], now: datetime) -> list[list[Any]]:
        return _columns([person_values(p, now) for p in people], _PERSON_COLUMNS)

    async def commit(self) -> None:
        await self.transaction.commit()
        if self.staged_messages:
            self.staged_messages = False
            self.wake()
        await self.begin()

    async def rollback(self) -> None:
        self.staged_messages = False
        if not self.connection.is_closed() and self.connection.is_in_transaction():
            await self.transaction.rollback()


class PgTalentStore(SqlTalentStore):
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        topic: str,
        *,
        wake_relay: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(engine, sessions, topic)
        self.wake_relay = wake_relay

    @asynccontextmanager
    async def writer(self, society: str) -> AsyncIterator[PgWriter]:  # type: ignore[override]
        async with self.engine.connect() as pooled:
            raw = await pooled.get_raw_connection()
            connection: asyncpg.Connection = raw.driver_connection
            key = f"talent.sync:{society}"
            await connection.execute(_LOCK, key)
            try:
                writer = PgWriter(connection, society, self.topic, self.wake_relay)
                await writer.begin()
                try:
                    yield writer
                finally:
                    await writer.rollback()  # an uncommitted rest: a dry run's (nothing), a failure's
            finally:
                if not connection.is_closed():
                    await connection.execute(_UNLOCK, key)
