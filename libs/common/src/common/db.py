"""Async SQLAlchemy engines for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, MetaData, event, exists, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def without_loopback_tls(url: str) -> str:
    """asyncpg's default (`sslmode=prefer`) encrypts even a connection to 127.0.0.1 when the server
    offers TLS, as Debian's does (snakeoil certificate): CPU on both ends for every round trip and every
    byte, for nothing, since loopback traffic never leaves the machine. A PostgreSQL URL naming a
    loopback host and no `ssl`/`sslmode` gets `ssl=disable`; say `?ssl=require` to keep TLS. Remote
    hosts are left to asyncpg's default."""
    if not url.startswith("postgresql"):
        return url
    parsed = make_url(url)
    if parsed.host not in LOOPBACK or "ssl" in parsed.query or "sslmode" in parsed.query:
        return url
    return parsed.update_query_dict({"ssl": "disable"}).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def ensure_sqlite_directory(url: str) -> None:
    """SQLite cannot create the folder of its file; do it so a fresh checkout just runs."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def use_wal(cursor: Any, *, attempts: int = 100, pause: float = 0.02) -> None:
    """Put the SQLite file in WAL mode (persistent: a no-op once done). The switch needs the file to
    itself, and SQLite refuses it at once, without waiting for the busy timeout, while another
    connection is switching too: the first connections of an app's engines (API and relay) on a file
    still in rollback-journal mode raced so, and one answered `database is locked` (a flaky 503 from
    /readyz). So: read the mode first, and retry the switch for a moment when refused."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or attempt == attempts - 1:
                raise  # anything but a refused switch (I/O, cannot open) is reported at once
            # The listener runs in SQLAlchemy's greenlet on the event loop: wait without blocking it.
            await_only(asyncio.sleep(pause))


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # SQLAlchemy's error messages would otherwise quote the statement's parameters (names, emails)
    # into every logged database error.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        ensure_sqlite_directory(url)
        for pool_option in ("pool_size", "max_overflow", "pool_pre_ping"):
            kwargs.pop(pool_option, None)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            use_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # The driver would only BEGIN at the first write, so reads before it see no snapshot and
            # read-then-write transactions lose updates; take over transaction control (SQLAlchemy's
            # documented recipe) and BEGIN IMMEDIATE, which serialises writers as PostgreSQL's row
            # locks would.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def asyncpg_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under a PostgreSQL session, inside the session's transaction, for hot
    paths that send array parameters directly. SQLAlchemy begins the database transaction lazily, at
    its first statement; a statement sent straight to asyncpg before that would run in autocommit
    (outside the transaction), so this begins it first when needed."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if session.in_transaction() and not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver


def json_list_holds(column: ColumnElement[Any], value: str, *, dialect: str) -> ColumnElement[bool]:
    """`column`, a JSON list (JSONB on PostgreSQL), holds `value`: `@>` on PostgreSQL, which a GIN index
    on the column serves; SQLite's `json_each` elsewhere."""
    if dialect == "postgresql":
        holds: ColumnElement[bool] = column.op("@>")(func.cast(literal(json.dumps([value])), postgresql.JSONB))
        return holds
    each = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == value))
