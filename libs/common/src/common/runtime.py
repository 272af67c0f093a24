"""What a running service holds: its engine, sessions, outbox relay and consumers, started and
stopped in the app's lifespan (engines are built there, never at import)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.db import create_engine, session_factory
from common.kafka.admin import ensure_topics, topics_dropping_data
from common.kafka.consumer import ConsumerRunner
from common.observability import TOPIC_DROPS_DATA
from common.outbox import OutboxRelay, install_wakeup
from common.settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
TOPIC_CHECK_SECONDS = 300.0  # an operator's later change to a topic shows within this


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
    topics_dropping_data: dict[str, str] | None = None  # topic → why; None until first checked

    @classmethod
    def build(
        cls, settings: ServiceSettings, outbox: Table | None, *, relay_wake_delay: float = 0.0, **engine_options: Any
    ) -> ServiceRuntime:
        """`engine_options` (pool_size, max_overflow, pool_pre_ping, ...) size the request engine;
        `relay_wake_delay` gathers commits into relay cycles (`OutboxRelay.wake`)."""
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
                wake_delay=relay_wake_delay,
            )
            install_wakeup(sessions, relay.wake)
        return cls(settings, engine, sessions, relay, relay_engine=relay_engine)

    async def start(self, owned: list[str], read: Sequence[str] = ()) -> None:
        """`owned`: the topics this service writes (it brings them to their configuration); `read`: the
        topics it consumes (created when missing, left to their owner otherwise). Both are checked for
        settings that would drop data, now and every `TOPIC_CHECK_SECONDS`."""
        topics = list(dict.fromkeys([*owned, *read]))
        ensured = False
        try:
            await self._ensure_topics(owned, topics)
            ensured = True
            await self._check_topics(topics)
        except Exception as exc:  # broker down at start-up: keep trying in the background
            log.warning("could not ensure or check topics at startup, retrying in the background: %s", exc)
        self._topic_task = asyncio.create_task(self._keep_topics(owned, topics, ensured=ensured))
        if self.relay:
            self.relay.start()
        for consumer in self.consumers:
            consumer.start()

    async def _ensure_topics(self, owned: list[str], topics: list[str]) -> None:
        if not self.settings.manage_topics:
            return
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            topics,
            partitions=self.settings.topic_partitions,
            replication_factor=self.settings.topic_replication_factor,
            min_insync_replicas=self.settings.topic_min_insync_replicas,
            configure=owned,
        )

    async def _check_topics(self, topics: list[str]) -> None:
        dropping = await topics_dropping_data(self.settings.kafka_bootstrap_servers, topics)
        for topic in topics:
            TOPIC_DROPS_DATA.labels(self.settings.service_name, topic).set(1 if topic in dropping else 0)
        for topic, reason in dropping.items():
            log.warning(
                "topic %s would drop data (%s): a rebuild from it would miss what it deleted; give it "
                "cleanup.policy=compact%s",
                topic,
                reason,
                "" if self.settings.manage_topics else " (EXCHANGE_MANAGE_TOPICS=false: its operator must)",
            )
        self.topics_dropping_data = dropping

    async def _keep_topics(self, owned: list[str], topics: list[str], *, ensured: bool) -> None:
        delay = TOPIC_CHECK_SECONDS if self.topics_dropping_data is not None else 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                if not ensured:
                    await self._ensure_topics(owned, topics)
                    ensured = True
                    log.info("topics ensured")
                await self._check_topics(topics)
            except Exception as exc:
                log.warning("topics still not ensured or checked: %s", exc)
                delay = min(delay * 2, 30.0)
            else:
                delay = TOPIC_CHECK_SECONDS

    def topic_retention(self) -> dict[str, Any]:
        """/readyz's word on the topics (common.web's readiness details): never a reason to be unready,
        since the service works; the operator has to act before the broker deletes anything."""
        checked = self.topics_dropping_data is not None
        return {"topic_retention": {"checked": checked, "drop_data": dict(self.topics_dropping_data or {})}}

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
    async def running(self, owned: list[str], read: Sequence[str] = ()) -> AsyncIterator[ServiceRuntime]:
        await self.start(owned, read)
        try:
            yield self
        finally:
            await self.stop()
