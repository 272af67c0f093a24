"""Which regions changed, from every consumer to every API process (PostgreSQL LISTEN/NOTIFY).

A consumer batch announces its changed regions with `pg_notify` inside its own transaction, so the
announcement is delivered exactly when the figures are committed, and never for a batch rolled back.
Every reporting process listens, so its SSE subscribers see every region's changes whichever process
consumed them: the consumers scale out (`reporting serve --workers N`, `reporting consume`), and the
streams stay complete. SQLite (one process) keeps the in-process path. The sending side, `announce`,
is PostgreSQL's adapter's (adapters/postgresql.py): a rebuild's swap announces through it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reporting.adapters.postgresql import CHANNEL, announce

log = logging.getLogger(__name__)


class NotifyAnnouncer:
    """The projections' `ChangeAnnouncer` port, implemented with `announce`."""

    async def regions_changed(self, session: AsyncSession, regions: set[str]) -> None:
        await announce(session, regions)


class ChangeListener:
    """Holds one connection that LISTENs, and hands every announced region to `on_change`. A lost
    connection is reopened (checked every `check_interval` seconds); since announcements sent meanwhile
    are lost, `on_reconnect` is called then (the broadcaster republishes every region)."""

    def __init__(
        self,
        engine: AsyncEngine,
        on_change: Callable[[Iterable[str]], None],
        on_reconnect: Callable[[], None],
        *,
        check_interval: float = 2.0,
    ) -> None:
        self.engine = engine
        self.on_change = on_change
        self.on_reconnect = on_reconnect
        self.check_interval = check_interval
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reporting-change-listener")

    async def wait_listening(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _received(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_change(payload.split(","))

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with self.engine.connect() as connection:
                    driver = (await connection.get_raw_connection()).driver_connection
                    assert driver is not None
                    await driver.add_listener(CHANNEL, self._received)
                    if not first:
                        self.reconnects += 1
                        self.on_reconnect()
                    first = False
                    self._ready.set()
                    try:
                        while not driver.is_closed():
                            await asyncio.sleep(self.check_interval)
                            await driver.execute("SELECT 1")  # notices a dead connection
                    finally:
                        self._ready.clear()
                        with contextlib.suppress(Exception):
                            await driver.remove_listener(CHANNEL, self._received)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: listen again when it is back
                log.warning("change listener lost its connection; reconnecting: %s", exc)
                self._ready.clear()
                await asyncio.sleep(self.check_interval)
