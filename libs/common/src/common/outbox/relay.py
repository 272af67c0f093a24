"""The relay: claims committed, unsent outbox rows and publishes them in order with an idempotent
producer, then deletes them (Kafka holds them from then on). A failed send rolls the claim back, so
nothing is lost; a broker that comes back is picked up with a freshly built producer (aiokafka can
stay stuck after a restart, issue 1017). A row too large to ever be published is moved to the
dead-letter table, so the rows behind it go on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.file_lock import SqliteFileLock
from common.kafka.clients import new_producer
from common.observability import (
    CLIENT_REBUILDS,
    OUTBOX_BACKLOG,
    OUTBOX_DEAD_LETTERS,
    OUTBOX_FAILURES,
    OUTBOX_LATENCY,
    OUTBOX_PUBLISHED,
)
from common.outbox.table import dead_letter_table
from common.outbox.writer import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

# One relay publishes at a time per database (a transaction-scoped advisory lock), so two replicas
# never interleave one key's messages; the other replica is a hot standby.
RELAY_LOCK_KEY = 0x0E7C_0B0C

RemovePublished = Callable[[], Awaitable[None]]
# How the broker refuses a record batch for its size: never retriable.
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


class _Unpublishable(NamedTuple):
    row: Any
    reason: str


class _Sent(NamedTuple):
    """What one send of a claim left: rows never to be published, and the first other failure."""

    unpublishable: list[_Unpublishable]
    failure: BaseException | None


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


def _message_id(row: Any) -> str:
    """The CloudEvent id of an outbox row (the claim does not read the `event_id` column)."""
    try:
        return str(json.loads(row.payload)["id"])
    except (ValueError, KeyError, TypeError):
        return ""


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
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        backlog_interval: float = 5.0,
        failure_log_interval: float = 30.0,
        max_backoff: float = 5.0,
        backlog_sessions: async_sessionmaker[AsyncSession] | None = None,
        wake_delay: float = 0.0,
    ) -> None:
        """`backlog_sessions`: where `outbox_backlog` is counted, if not on the relay's own connection
        (which a hanging send holds). `wake_delay`: the commits of this many seconds are gathered into
        one publishing cycle (see `wake`)."""
        self.service = service
        self.sessions = sessions
        self.outbox = outbox
        self.batch_size = batch_size
        self.send_timeout = send_timeout
        self.idle_poll = idle_poll
        self.max_message_bytes = max_message_bytes
        self.backlog_interval = backlog_interval
        self.failure_log_interval = failure_log_interval
        self.max_backoff = max_backoff
        self.dead_letters = dead_letter_table(outbox.metadata)
        self._backlog_sessions = backlog_sessions or sessions
        self._producer_factory = producer_factory or (
            lambda: new_producer(bootstrap_servers, client_id=f"{service}-relay", linger_ms=0)
        )
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self.wake_delay = wake_delay
        self._wake_pending = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._backlog_task: asyncio.Task[None] | None = None
        self._send_alone: set[int] = set()  # rows of a batch the broker refused for its size
        self._file_lock = SqliteFileLock("relay-lock", "the outbox relay")  # SQLite: one relay per file
        self.last_error: str | None = None
        self.published = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def wake(self) -> None:
        """Called after every commit that staged messages (the only way a writer nudges the relay).
        With a `wake_delay`, the wake-ups of that many seconds make one: woken after every commit of a
        busy service, the relay ran one full cycle (lock, read, send, delete) per request; gathering a
        few milliseconds of commits cut its CPU per message several times, for at most `wake_delay`
        more publishing latency."""
        if self.wake_delay <= 0:
            self._wake.set()
        elif not self._wake_pending:
            self._wake_pending = True
            asyncio.get_running_loop().call_later(self.wake_delay, self._wake_now)

    def _wake_now(self) -> None:
        self._wake_pending = False
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"{self.service}-outbox-relay")
        # Counted on its own schedule: while a send hangs on a broker that is gone, the backlog still
        # shows (it is what operators alert on).
        self._backlog_task = asyncio.create_task(self._watch_backlog(), name=f"{self.service}-outbox-backlog")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in (self._task, self._backlog_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_producer()
        self._release_file_lock()

    async def run(self) -> None:
        backoff = 0.1
        failures = 0  # since the last warning
        failing_since: float | None = None
        last_warning = -self.failure_log_interval
        while not self._stopping:
            try:
                published = await self.publish_once()
                if failing_since is not None:
                    log.info("outbox publishing again after %.0fs of failures", time.monotonic() - failing_since)
                    failing_since, failures, backoff = None, 0, 0.1
                if published < self.batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: retry with backoff, lose nothing
                OUTBOX_FAILURES.labels(self.service).inc()
                self.last_error = f"{type(exc).__name__}: {exc or f'no answer within {self.send_timeout}s'}"
                failures += 1
                failing_since = failing_since or time.monotonic()
                # One line per interval, however often it fails: an outage must not flood the log.
                if time.monotonic() - last_warning >= self.failure_log_interval:
                    last_warning = time.monotonic()
                    log.warning(
                        "outbox publish failing for %.0fs (%d failed attempt(s) since the last report); "
                        "retrying in %.1fs: %s",
                        time.monotonic() - failing_since,
                        failures,
                        backoff,
                        self.last_error,
                    )
                    failures = 0
                await self._abort_producer()  # the claim is given up: nothing queued may follow it
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _watch_backlog(self) -> None:
        while True:
            try:
                async with self._backlog_sessions() as session:
                    count = await session.scalar(select(func.count()).select_from(self.outbox))
                OUTBOX_BACKLOG.labels(self.service).set(count or 0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: the relay's own loop says so
                log.debug("outbox backlog not counted: %s", exc)
            await asyncio.sleep(self.backlog_interval)

    # -- one pass ---------------------------------------------------------------------------------
    async def publish_once(self) -> int:
        """Publish up to one batch of unsent messages; returns how many were published."""
        if self.sessions.kw["bind"].dialect.name != "postgresql":
            return await self._publish_once_portable()
        async with self.sessions() as session, session.begin():
            rows, remove_published = await self._claim_postgres(session)
            if not rows:
                return 0
            sent = await self._send_or_abort(rows)
            sent_at = datetime.now(UTC)
            if sent.failure is None:
                await remove_published()
            await self._quarantine(session, sent.unpublishable)
        # The advisory lock is released by now; a failed send's producer was closed before that.
        if sent.failure is not None:
            raise sent.failure
        self._observe(rows, len(sent.unpublishable), sent_at)
        return len(rows) - len(sent.unpublishable)

    async def _publish_once_portable(self) -> int:
        """SQLite (one relay per database file, kept by a file lock): read, send, then delete in a
        second short transaction, so the database's single write lock is never held while waiting
        for the broker."""
        if not self._hold_file_lock():
            return 0  # another relay publishes this file's outbox; this one stands by
        o = self.outbox.c
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(o.id, o.topic, o.key, o.payload, o.headers, o.created_at)
                    .order_by(o.id)
                    .limit(self.batch_size)
                )
            ).all()
        if not rows:
            return 0
        sent = await self._send_or_abort(rows)
        sent_at = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            if sent.failure is None:
                await session.execute(delete(self.outbox).where(o.id.in_([r.id for r in rows])))
            await self._quarantine(session, sent.unpublishable)
        if sent.failure is not None:
            raise sent.failure
        self._observe(rows, len(sent.unpublishable), sent_at)
        return len(rows) - len(sent.unpublishable)

    async def _send_or_abort(self, rows: Any) -> _Sent:
        """Send `rows`; on any failure the producer is closed before returning, so nothing it still
        holds can reach the topic after the caller gives the rows up (another relay may publish them
        next, and a late copy of an old version would land after the newer ones)."""
        try:
            sent = await asyncio.wait_for(self._send(rows), self.send_timeout)
        except BaseException:
            await self._abort_producer()
            raise
        if sent.failure is not None:
            await self._abort_producer()
        return sent

    async def _quarantine(self, session: AsyncSession, unpublishable: list[_Unpublishable]) -> None:
        """Move rows that can never be published to the dead-letter table, loudly."""
        if not unpublishable:
            return
        now = datetime.now(UTC)
        await session.execute(
            insert(self.dead_letters),
            [
                {
                    "id": u.row.id,
                    "event_id": _message_id(u.row),
                    "topic": u.row.topic,
                    "key": u.row.key,
                    "payload": u.row.payload,
                    "headers": u.row.headers,
                    "created_at": u.row.created_at,
                    "failed_at": now,
                    "reason": u.reason,
                }
                for u in unpublishable
            ],
        )
        await session.execute(delete(self.outbox).where(self.outbox.c.id.in_([u.row.id for u in unpublishable])))
        OUTBOX_DEAD_LETTERS.labels(self.service).inc(len(unpublishable))
        for u in unpublishable:
            log.error(
                "outbox row %s (message %s, topic %s, key %s) moved to %s, never to be published by the relay: %s",
                u.row.id,
                _message_id(u.row),
                u.row.topic,
                u.row.key,
                self.dead_letters.name,
                u.reason,
            )

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
            f"SELECT id, topic, key, payload, headers, created_at FROM {table} ORDER BY id LIMIT $1",
            self.batch_size,
        )

        async def remove_published() -> None:
            await driver.execute(f"DELETE FROM {table} WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])

        return [_Row(*r) for r in rows], remove_published

    async def _send(self, rows: Any) -> _Sent:
        """Publish `rows` in order through aiokafka's batch API: one record batch per partition is
        filled directly (no per-message `send()`: metadata wait, partitioner call, future and
        accumulator bookkeeping per row were most of the relay's CPU) and handed over whole. The
        partition is the one `send()` would pick for the key, so placement and per-key order do
        not change; a partition's batches are queued in order (aiokafka drains them one by one).
        A row over `max_message_bytes`, or alone in a batch the broker refuses for its size, is
        returned as unpublishable; any other failure is returned too, and the caller keeps every
        other row."""
        producer = await self._ensure_producer()
        submitted: list[tuple[asyncio.Future[Any], list[Any]]] = []  # (future, its batch's rows)
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], tuple[Any, list[Any]]] = {}
        parsed: dict[str | None, tuple[list[tuple[str, bytes]], int]] = {}
        unpublishable: list[_Unpublishable] = []
        for n, row in enumerate(rows):
            if n % 500 == 499:  # let the API's requests run while a large backlog drains
                await asyncio.sleep(0)
            if (parsed_headers := parsed.get(row.headers)) is None:  # most rows of a batch share their headers
                items = json.loads(row.headers or "{}").items()
                parsed_headers = parsed[row.headers] = ([(k, v.encode()) for k, v in items], len(row.headers or ""))
            headers, headers_size = parsed_headers
            key, value = row.key.encode(), row.payload.encode()
            if (size := len(key) + len(value) + headers_size) >= self.max_message_bytes:
                reason = f"message too large: {size} bytes, a message stays under {self.max_message_bytes}"
                unpublishable.append(_Unpublishable(row, reason))
                continue
            if (topic_partitions := partitions.get(row.topic)) is None:
                topic_partitions = partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
            tp = (row.topic, partition_for(key, topic_partitions))
            alone = row.id in self._send_alone
            if (batch_rows := open_batches.get(tp)) is not None:
                batch, in_batch = batch_rows
                if not alone and batch.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                    in_batch.append(row)
                    continue
                # Full, or this row goes alone: hand it over and start the next one.
                submitted.append((await self._submit(producer, batch, tp), in_batch))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)  # an empty batch takes any record
            if alone:
                submitted.append((await self._submit(producer, batch, tp), [row]))
                open_batches.pop(tp, None)
            else:
                open_batches[tp] = (batch, [row])
        for tp, (batch, in_batch) in open_batches.items():
            submitted.append((await self._submit(producer, batch, tp), in_batch))
        outcomes = await asyncio.gather(*(future for future, _rows in submitted), return_exceptions=True)
        failure: BaseException | None = None
        for (_future, in_batch), outcome in zip(submitted, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, _TOO_LARGE) and len(in_batch) == 1:
                reason = f"the broker refused it: {type(outcome).__name__}: {outcome}"
                unpublishable.append(_Unpublishable(in_batch[0], reason))
                continue
            if isinstance(outcome, _TOO_LARGE):
                # Which of these rows the broker cannot take is unknown: they go one per batch from now
                # on, so the next cycle finds it alone (and the others are published).
                self._send_alone.update(r.id for r in in_batch)
            failure = failure or outcome
        if failure is None:
            self._send_alone.difference_update(r.id for r in rows)
        return _Sent(unpublishable, failure)

    @staticmethod
    async def _submit(producer: AIOKafkaProducer, batch: Any, tp: tuple[str, int]) -> asyncio.Future[Any]:
        batch.close()  # nothing else may join it (aiokafka's send() could append to an open one)
        future: asyncio.Future[Any] = await producer.send_batch(batch, tp[0], partition=tp[1])
        return future

    def _observe(self, rows: Any, unpublishable: int, sent_at: datetime) -> None:
        self.published += len(rows) - unpublishable
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows) - unpublishable)
        # The oldest row of the batch bounds the batch's latency; observing each row costs throughput.
        created = rows[0].created_at if rows[0].created_at.tzinfo else rows[0].created_at.replace(tzinfo=UTC)
        OUTBOX_LATENCY.labels(self.service).observe((sent_at - created).total_seconds())
        self.last_error = None

    async def backlog(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(self.outbox))
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

    async def _abort_producer(self) -> None:
        """Close the producer without sending what it still queues: `stop()` would first deliver
        every queued batch, and when it gives up (its 5 s) the producer goes on sending them. The
        sender task is cancelled first; it waits for the requests already on the wire (each bounded
        by the request timeout) and sends nothing more. aiokafka has no public call for this."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        CLIENT_REBUILDS.labels(self.service, "relay").inc()
        with contextlib.suppress(Exception):
            await producer._sender.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 5)  # the sender is done: only the connections close

    # -- one relay per SQLite file ----------------------------------------------------------------------
    def _hold_file_lock(self) -> bool:
        """SQLite has no advisory lock: one relay per database file publishes (any number of processes,
        e.g. `serve --workers N`); the others stand by (common.file_lock)."""
        return self._file_lock.hold(self.sessions.kw["bind"].url.database)

    def _release_file_lock(self) -> None:
        self._file_lock.release()
