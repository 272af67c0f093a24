"""Raw asyncpg connections for the hot PostgreSQL statements (single and batch create).

SQLAlchemy's async engine costs about 150 µs of CPU per checkout (greenlet hand-offs, pool events,
reset on return), as much as the rest of a create request's database work; asyncpg's own pool runs
a reset query (a round trip) on every release. This pool is a bounded LIFO stack of open
connections, nothing more: the statements that use it are single statements in autocommit mode
(atomic by themselves), so a connection comes back with no transaction and no session state to
reset. A connection that failed below SQL (closed, cancelled mid-statement, network error) is
closed rather than returned, and the idle ones are dropped with it: after a database restart they
are all dead, and the next requests reconnect instead of each failing once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import asyncpg
from common.errors import Unavailable
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


def connector(database_url: str) -> Connect:
    """Open a connection to the database of an SQLAlchemy URL (`postgresql+asyncpg://…?ssl=disable`),
    with the URL's query passed to asyncpg as SQLAlchemy's dialect does, and jsonb read as Python."""
    url = make_url(database_url)
    options: dict[str, Any] = {**url.translate_connect_args(username="user"), **url.query}

    async def connect() -> asyncpg.Connection:
        try:
            connection: asyncpg.Connection = await asyncpg.connect(**options)
        except (OSError, TimeoutError) as exc:  # asyncpg's own errors are answered 503 by common.errors
            log.warning("cannot connect to the database: %s", exc)
            raise Unavailable("The database could not complete the request; try again.") from exc
        await connection.set_type_codec(
            "jsonb", schema="pg_catalog", encoder=_jsonb_text, decoder=json.loads, format="text"
        )
        return connection

    return connect


def _jsonb_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class PgPool:
    """At most `size` connections, opened when first needed, the most recently used handed out first."""

    def __init__(self, connect: Connect, size: int) -> None:
        self._connect = connect
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    def connection(self) -> _Checkout:
        """`async with pool.connection() as connection:` one connection, returned on exit."""
        return _Checkout(self)

    async def acquire(self) -> asyncpg.Connection:
        await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
            return await self._connect()
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: asyncpg.Connection, *, broken: bool = False, discard: bool = False) -> None:
        """Back to the pool; `discard` closes it, `broken` closes it and every idle one too."""
        try:
            if broken:
                connection.terminate()
                self._drop_idle()
            elif discard or self._closed or connection.is_closed() or connection.is_in_transaction():
                connection.terminate()
            else:
                self._idle.append(connection)
        finally:
            self._slots.release()

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.terminate()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await asyncio.wait_for(connection.close(), 5)
            except Exception:  # closing anyway; a dead connection cannot be closed politely
                connection.terminate()


class _Checkout:
    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: PgPool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await self._pool.acquire()
        return self._connection

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._connection is not None
        connection, self._connection = self._connection, None
        if exc is None or (isinstance(exc, asyncpg.PostgresError | ValueError) and not isinstance(exc, _LOST)):
            # Success, an SQL error (the statement was its own transaction) or arguments that could
            # not be encoded (nothing was sent): the connection is as good as before.
            self._pool.release(connection)
        elif isinstance(exc, _LOST):
            self._pool.release(connection, broken=True)
        else:  # cancelled mid-statement or anything unexpected: this connection's state is unknown
            self._pool.release(connection, discard=True)


# The connection (and most likely every other idle one) is gone: a database restart, a network error.
_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
