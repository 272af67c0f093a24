"""The relay: claims committed, unsent outbox rows and publishes them in order with an idempotent
producer, then deletes them (Kafka holds them from then on). A failed send rolls the claim back, so
nothing is lost; a broker that comes back is picked up with a freshly built producer (aiokafka can
stay stuck after a restart, issue 1017)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.kafka.clients import new_producer
from common.observability import (
    CLIENT_REBUILDS,
    OUTBOX_BACKLOG,
    OUTBOX_FAILURES,
    OUTBOX_LATENCY,
    OUTBOX_PUBLISHED,
)

log = logging.getLogger(__name__)

# One relay publishes at a time per database (a transaction-scoped advisory lock), so two replicas
# never interleave one key's messages; the other replica is a hot standby.
RELAY_LOCK_KEY = 0x0E7C_0B0C

RemovePublished = Callable[[], Awaitable[None]]


class _Row(NamedTuple):
    id: int
    topic: str
    key: str
    payload: str
    headers: str | None
    created_at: datetime


@functools.lru_cache(maxsize=64)
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes, _m: int = 0x5BD1E995, _mask: int = 0xFFFFFFFF) -> int:
    """Kafka's murmur2, as `aiokafka.partitioner.murmur2` computes it, in about half its time (the
    words unpacked at once, fewer masking steps): it was a third of the relay's CPU per message."""
    length = len(data)
    h = 0x9747B28C ^ length
    for k in _words(length >> 2)(data):
        k = (k * _m) & _mask
        h = ((h * _m) & _mask) ^ (((k ^ (k >> 24)) * _m) & _mask)
    if rest := length & 3:
        tail = length & ~3
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _m) & _mask
    h = ((h ^ (h >> 13)) * _m) & _mask
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The partition `send()` picks for `key`: what aiokafka's default partitioner (the one
    `new_producer` keeps) computes, murmur2 of the key over the topic's partitions in id order."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


async def _nothing_to_remove() -> None:
    return None


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Table,
        bootstrap_servers: str,
        batch_size: int = 5000,
        send_timeout: float = 15.0,
        idle_poll: float = 0.2,
        retention: timedelta = timedelta(hours=1),
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.service = service
        self.sessions = sessions
        self.outbox = outbox
        self.batch_size = batch_size
        self.send_timeout = send_timeout
        self.idle_poll = idle_poll
        self.retention = retention
        self._producer_factory = producer_factory or (
            lambda: new_producer(bootstrap_servers, client_id=f"{service}-relay", linger_ms=0)
        )
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.published = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def wake(self) -> None:
        """Called after a commit that staged messages; safe from any thread of the loop."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"{self.service}-outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_producer()

    async def run(self) -> None:
        backoff = 0.1
        last_housekeeping = 0.0
        while not self._stopping:
            try:
                published = await self.publish_once()
                backoff = 0.1
                if time.monotonic() - last_housekeeping > 5:
                    last_housekeeping = time.monotonic()
                    await self._housekeeping()
                if published < self.batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: retry with backoff, lose nothing
                OUTBOX_FAILURES.labels(self.service).inc()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("outbox publish failed; retrying in %.1fs: %s", backoff, self.last_error)
                await self._close_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # -- one pass ---------------------------------------------------------------------------------
    async def publish_once(self) -> int:
        """Publish up to one batch of unsent messages; returns how many were published."""
        if self.sessions.kw["bind"].dialect.name != "postgresql":
            return await self._publish_once_portable()
        async with self.sessions() as session, session.begin():
            rows, remove_published = await self._claim_postgres(session)
            if not rows:
                return 0
            await asyncio.wait_for(self._send(rows), self.send_timeout)
            sent_at = datetime.now(UTC)
            await remove_published()
        self._observe(rows, sent_at)
        return len(rows)

    async def _publish_once_portable(self) -> int:
        """SQLite (one relay per database file): read, send, then delete in a second short transaction,
        so the database's single write lock is never held while waiting for the broker."""
        o = self.outbox.c
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(o.id, o.topic, o.key, o.payload, o.headers, o.created_at)
                    .where(o.sent_at.is_(None))
                    .order_by(o.id)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        await asyncio.wait_for(self._send(rows), self.send_timeout)
        sent_at = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await session.execute(delete(self.outbox).where(o.id.in_([r.id for r in rows])))
        self._observe(rows, sent_at)
        return len(rows)

    async def _claim_postgres(self, session: AsyncSession) -> tuple[Sequence[Any], RemovePublished]:
        # Losing the "sent" mark in a crash only means publishing again (at least once), so the
        # relay's own commit need not wait for fsync.
        locked = await session.scalar(
            select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY)).where(
                func.set_config("synchronous_commit", "off", True).is_not(None)
            )
        )
        if not locked:
            return [], _nothing_to_remove
        # The hot path reads through asyncpg directly: SQLAlchemy's per-row processing was most of
        # the relay's CPU time (bench/plumbing). Same transaction: the lock query above began it.
        connection = await (await session.connection()).get_raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        table = self.outbox.name
        # No row locks: the advisory lock above makes this the only relay of the table, and nothing
        # else changes unsent rows. Locking each row wrote a WAL record per row; marking it sent
        # (an UPDATE) wrote a whole new copy of its payload — a third of the batch path's WAL.
        rows = await driver.fetch(
            f"SELECT id, topic, key, payload, headers, created_at FROM {table} WHERE sent_at IS NULL "
            "ORDER BY id LIMIT $1",
            self.batch_size,
        )

        async def remove_published() -> None:
            await driver.execute(f"DELETE FROM {table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])

        return [_Row(*r) for r in rows], remove_published

    async def _send(self, rows: Any) -> None:
        """Publish `rows` in order through aiokafka's batch API: one record batch per partition is
        filled directly (no per-message `send()`: metadata wait, partitioner call, future and
        accumulator bookkeeping per row were most of the relay's CPU) and handed over whole. The
        partition is the one `send()` would pick for the key, so placement and per-key order do
        not change; a partition's batches are queued in order (aiokafka drains them one by one)."""
        producer = await self._ensure_producer()
        futures: list[asyncio.Future[Any]] = []
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        parsed: dict[str | None, list[tuple[str, bytes]]] = {}
        for n, row in enumerate(rows):
            if n % 500 == 499:  # let the API's requests run while a large backlog drains
                await asyncio.sleep(0)
            if (headers := parsed.get(row.headers)) is None:  # most rows of a batch share their headers
                headers = parsed[row.headers] = [(k, v.encode()) for k, v in json.loads(row.headers or "{}").items()]
            if (topic_partitions := partitions.get(row.topic)) is None:
                topic_partitions = partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
            key, value = row.key.encode(), row.payload.encode()
            tp = (row.topic, partition_for(key, topic_partitions))
            if (batch := open_batches.get(tp)) is None:
                batch = open_batches[tp] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                # Full: hand it over and start the next one (an empty batch always takes a record).
                futures.append(await self._submit(producer, batch, tp))
                batch = open_batches[tp] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for tp, batch in open_batches.items():
            futures.append(await self._submit(producer, batch, tp))
        await asyncio.gather(*futures)

    @staticmethod
    async def _submit(producer: AIOKafkaProducer, batch: Any, tp: tuple[str, int]) -> asyncio.Future[Any]:
        batch.close()  # nothing else may join it (aiokafka's send() could append to an open one)
        future: asyncio.Future[Any] = await producer.send_batch(batch, tp[0], partition=tp[1])
        return future

    def _observe(self, rows: Any, sent_at: datetime) -> None:
        self.published += len(rows)
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        # The oldest row of the batch bounds the batch's latency; observing each row costs throughput.
        created = rows[0].created_at if rows[0].created_at.tzinfo else rows[0].created_at.replace(tzinfo=UTC)
        OUTBOX_LATENCY.labels(self.service).observe((sent_at - created).total_seconds())
        self.last_error = None

    async def _housekeeping(self) -> None:
        async with self.sessions() as session, session.begin():
            o = self.outbox.c
            backlog = await session.scalar(select(func.count()).select_from(self.outbox).where(o.sent_at.is_(None)))
            OUTBOX_BACKLOG.labels(self.service).set(backlog or 0)
            # Published rows are deleted at once now; this clears those an earlier relay marked sent.
            cutoff = datetime.now(UTC) - self.retention
            await session.execute(delete(self.outbox).where(o.sent_at.is_not(None), o.sent_at < cutoff))

    async def backlog(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(self.outbox).where(self.outbox.c.sent_at.is_(None))
            )
        return int(count or 0)

    # -- producer -----------------------------------------------------------------------------------
    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await asyncio.wait_for(producer.start(), self.send_timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            CLIENT_REBUILDS.labels(self.service, "relay").inc()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)
