"""What a running service holds: its engine, sessions, outbox relay and consumers, started and
stopped in the app's lifespan (engines are built there, never at import)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.db import create_engine, session_factory
from common.kafka.admin import ensure_topics
from common.kafka.consumer import ConsumerRunner
from common.outbox import OutboxRelay, install_wakeup
from common.settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on the event loop the services run on: uvloop, as uvicorn picks it
    when installed (it is, with uvicorn[standard]), so a command and a benchmark measure what is served."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


def tune_gc_for_batches() -> None:
    """For a process that decodes thousands of messages per batch: keep what is loaded by now (modules,
    reference data) out of every future collection, and run the cyclic collector far less often. A
    batch keeps ~200,000 objects alive until it is applied; with the defaults (700, 10, 10) — and still
    with (50,000, 20, 20) — they were scanned again and again and promoted into full collections, a
    fifth of a rebuild's time (bench/reporting/README.md). These objects are freed by reference
    counting; the collector only has cycles to find, and they are rare here."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 100, 100)


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    relay_engine: AsyncEngine | None = None
    _topic_task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: ServiceSettings, outbox: Table | None, **engine_options: Any) -> ServiceRuntime:
        """`engine_options` (pool_size, max_overflow, pool_pre_ping, ...) size the request engine."""
        engine = create_engine(settings.database_url, **engine_options)
        sessions = session_factory(engine)
        relay = relay_engine = None
        if outbox is not None and settings.relay_enabled:
            # The relay gets one connection of its own: no pool checkout or pre-ping per cycle (a
            # broken connection fails one cycle, is discarded, and the next cycle reconnects).
            relay_engine = create_engine(settings.database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
            relay = OutboxRelay(
                service=settings.service_name,
                sessions=session_factory(relay_engine),
                outbox=outbox,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                max_message_bytes=settings.outbox_max_message_bytes,
                backlog_sessions=sessions,  # counted while a hanging send holds the relay's connection
            )
            install_wakeup(sessions, relay.wake)
        return cls(settings, engine, sessions, relay, relay_engine=relay_engine)

    async def start(self, topics: list[str]) -> None:
        try:
            await ensure_topics(
                self.settings.kafka_bootstrap_servers, topics, partitions=self.settings.topic_partitions
            )
        except Exception as exc:  # broker down at start-up: keep trying in the background
            log.warning("could not ensure topics at startup, retrying in the background: %s", exc)
            self._topic_task = asyncio.create_task(self._ensure_topics_until_done(topics))
        if self.relay:
            self.relay.start()
        for consumer in self.consumers:
            consumer.start()

    async def _ensure_topics_until_done(self, topics: list[str]) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await ensure_topics(
                    self.settings.kafka_bootstrap_servers, topics, partitions=self.settings.topic_partitions
                )
            except Exception as exc:
                log.warning("topics still not ensured: %s", exc)
                delay = min(delay * 2, 30.0)
            else:
                log.info("topics ensured")
                return

    async def stop(self) -> None:
        if self._topic_task:
            self._topic_task.cancel()
        for consumer in self.consumers:
            await consumer.stop()
        if self.relay:
            await self.relay.stop()
        if self.relay_engine:
            await self.relay_engine.dispose()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def running(self, topics: list[str]) -> AsyncIterator[ServiceRuntime]:
        await self.start(topics)
        try:
            yield self
        finally:
            await self.stop()
