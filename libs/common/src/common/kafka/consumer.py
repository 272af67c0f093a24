"""A consumer that applies messages exactly once in effect.

Per batch: undecodable messages go to `<topic>.dlq` (with headers saying why) and the consumer
carries on; the rest are de-duplicated through the inbox and applied in ONE database transaction;
only after that commit are the offsets of the processed messages committed. A crash between the two
commits redelivers messages the inbox already holds, so they have no effect.

A failed batch is retried with backoff. Only failures that may come from a message's own data
(`common.kafka.failures.classify`: "poison") count towards isolation mode, where messages are applied
one by one and one that keeps failing so on its own is dead-lettered; a broker outage, an offset commit
refused, a deadlock or a concurrent change never dead-letters anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.envelope import CloudEvent
from common.inbox import claim_new, prune
from common.kafka.clients import new_consumer, new_producer
from common.kafka.failures import DeadLetterFailed, InvalidMessage, classify, decode_failure_reason, describe
from common.observability import (
    CLIENT_REBUILDS,
    CONSUMER_DLQ,
    CONSUMER_DLQ_FAILURES,
    CONSUMER_DUPLICATES,
    CONSUMER_FAILURES,
    CONSUMER_LAG,
    CONSUMER_PROCESSED,
    new_traceparent,
    traceparent_var,
)

log = logging.getLogger(__name__)

__all__ = ["BatchHandler", "ConsumerRunner", "Decoded", "Delivery", "InvalidMessage", "decode_envelope", "dlq_topic"]


class Decoded(NamedTuple):
    message_id: str  # the CloudEvent id: what the inbox de-duplicates by
    value: Any


class Delivery(NamedTuple):  # a tuple: made once per message, and cheaper to build than a dataclass
    topic: str
    partition: int
    offset: int
    message_id: str
    decoded: Any
    traceparent: str | None = None  # the consumer's span under the producer's trace, when it sent one


class BatchHandler(Protocol):
    def decode(self, topic: str, raw: bytes) -> Decoded:
        """Parse and validate one message; pure, no I/O. A pydantic ValidationError means the envelope is
        invalid, InvalidMessage that its data is (both go to the dead-letter topic)."""

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        """Apply new (never seen) messages inside the caller's transaction; do not commit."""


@dataclass
class ConsumerState:
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    transient_failures: int = 0  # failed batch attempts, retried
    poison_failures: int = 0  # those that may come from a message's data: they lead to isolation mode
    last_progress: float = field(default_factory=time.monotonic)
    lag: int = 0


def decode_envelope(raw: bytes) -> CloudEvent:
    """The generic decoder for handlers that read `data` as a dictionary."""
    return CloudEvent.from_bytes(raw)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 5.0


class _FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: object) -> None:
        await self.runner._before_partitions_revoked()

    async def on_partitions_assigned(self, assigned: object) -> None:
        return None


class ConsumerRunner:
    def __init__(
        self,
        *,
        service: str,
        topics: Sequence[str],
        group_id: str,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        handler: BatchHandler,
        bootstrap_servers: str,
        max_batch: int = 2000,
        stall_timeout: float = 30.0,
        inbox_retention: timedelta | None = None,
        isolate_after: int = 3,
        attempts_alone: int = 3,
        after_db_commit: Callable[[], Awaitable[None]] | None = None,
        after_batch: Callable[[Sequence[Delivery]], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.topics = list(topics)
        self.group_id = group_id
        self.sessions = sessions
        self.inbox = inbox
        self.handler = handler
        self.bootstrap_servers = bootstrap_servers
        self.max_batch = max_batch
        self.stall_timeout = stall_timeout
        self.inbox_retention = inbox_retention
        self._next_prune = 0.0
        self.isolate_after = isolate_after
        self.attempts_alone = attempts_alone
        self._failures = 0  # consecutive poison failures
        self._backoff = _FIRST_BACKOFF
        # Messages of a batch that fails are read again: do not dead-letter them twice.
        self._dead_lettered: set[tuple[str, int, int]] = set()
        self.after_db_commit = after_db_commit
        self.after_batch = after_batch
        self.state = ConsumerState()
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Task[None] | None = None
        self._rebalances = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"{self.service}-consumer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        while True:
            try:
                consumer = await self._ensure_consumer()
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # rebuild the clients and re-read what was not committed
                await self._failed(exc)

    async def _failed(self, exc: Exception) -> None:
        kind = classify(exc)
        if kind == "poison":
            self._failures += 1
            self.state.poison_failures += 1
        else:
            self.state.transient_failures += 1
        CONSUMER_FAILURES.labels(self.service, kind).inc()
        backoff = self._backoff
        log.warning(
            "consumer batch failed; retrying in %.1fs",
            backoff,
            extra={"error": describe(exc), "failure": kind, "isolating": self._failures >= self.isolate_after},
        )
        await self._close()
        await asyncio.sleep(backoff)
        self._backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and decode the next batch while the database applies the previous one (decoding is
        CPU in this process, applying mostly waits on PostgreSQL): batches are still applied, and their
        offsets committed, one after the other in order."""
        try:
            while True:
                rebalances = self._rebalances
                batches = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                records = [r for tp_records in batches.values() for r in tp_records]
                prepared = await self._prepare(records) if records else None
                await self._finish_in_flight()
                if prepared is not None and rebalances != self._rebalances:
                    # Partitions were revoked meanwhile: apply nothing of this batch, and read it again
                    # where its partitions are still (or again) ours; others re-read it themselves.
                    self._rewind(consumer, records)
                    prepared = None
                if prepared is not None:
                    if self._failures >= self.isolate_after:
                        await self._commit(consumer, records, *prepared)  # one by one: no overlap
                        self._succeeded()
                    else:
                        self._in_flight = asyncio.create_task(self._commit(consumer, records, *prepared))
                await self._watch(consumer, bool(records))
                if self._consumer is not consumer:
                    return  # the watchdog closed it: start a new one (reading it would raise ConsumerStoppedError)
                await self._maybe_prune()
        finally:
            in_flight, self._in_flight = self._in_flight, None
            if in_flight is not None:
                in_flight.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await in_flight

    @staticmethod
    def _rewind(consumer: AIOKafkaConsumer, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        assigned = consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                consumer.seek(tp, offset)

    async def _finish_in_flight(self) -> None:
        """Wait for the batch in flight (its transaction and offset commit); raise what it raised."""
        task = self._in_flight
        if task is None:
            return
        try:
            await task
        finally:
            if self._in_flight is task:
                self._in_flight = None
        self._succeeded()

    async def _before_partitions_revoked(self) -> None:
        """A rebalance takes partitions away: let the batch in flight commit its offsets first, or its
        commit would fail on partitions no longer ours. Its failure, if any, is raised in the loop (which
        awaits the same task), not in the middle of the rebalance."""
        task = self._in_flight
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        self._rebalances += 1

    def _succeeded(self) -> None:
        self.state.last_progress = time.monotonic()
        self._failures = 0
        self._backoff = _FIRST_BACKOFF

    async def _prepare(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Delivery], dict[str, ConsumerRecord[bytes, bytes]]]:
        """Decode (dead-lettering what cannot be), yielding now and then so the batch in flight can
        send its next statement. The hot loop of every consumer: no coroutine per message."""
        deliveries: list[Delivery] = []
        record_of: dict[str, ConsumerRecord[bytes, bytes]] = {}
        # One consumer span per producer trace and batch: the messages of one request (a batch POST)
        # share their trace, so a child span is made once, not per message.
        spans: dict[str, str] = {}
        decode = self.handler.decode
        for index, record in enumerate(records):
            if index % 256 == 255:
                await asyncio.sleep(0)
            traceparent = None
            for name, value in record.headers or ():
                if name == "traceparent":
                    parent = value.decode("latin-1")
                    traceparent = spans.get(parent) or spans.setdefault(parent, new_traceparent(parent))
            try:
                decoded = decode(record.topic, record.value or b"")
            except Exception as exc:  # whatever the decoder trips on, retrying cannot fix it
                await self._dead_letter_undecodable(record, exc, traceparent)
                continue
            deliveries.append(
                Delivery(record.topic, record.partition, record.offset, decoded.message_id, decoded.value, traceparent)
            )
            record_of.setdefault(decoded.message_id, record)
        return deliveries, record_of

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        records: list[ConsumerRecord[bytes, bytes]],
        deliveries: list[Delivery],
        record_of: dict[str, ConsumerRecord[bytes, bytes]],
    ) -> None:
        """Apply a decoded batch in one transaction, then commit its offsets."""
        by_id: dict[str, Delivery] = {}
        for d in deliveries:
            by_id.setdefault(d.message_id, d)
        if self._failures >= self.isolate_after:
            fresh = await self._apply_one_by_one(by_id, record_of)
        else:
            fresh = await self._apply(list(by_id.values()))
        duplicates = len(deliveries) - len(fresh)
        self._count(fresh, duplicates)
        if self.after_db_commit:
            await self.after_db_commit()
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in self._offsets(records).items() if tp in assigned}
        if offsets:  # a partition revoked meanwhile is re-read by its owner; the inbox absorbs that
            await consumer.commit(offsets)
        if self.after_batch and fresh:
            await self.after_batch(fresh)

    async def _apply(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Apply in one transaction with the inbox; returns the deliveries that were new."""
        async with self.sessions() as session, session.begin():
            new_ids = await claim_new(session, self.inbox, {d.message_id: d.topic for d in deliveries})
            fresh = [d for d in deliveries if d.message_id in new_ids]
            if fresh:
                await self.handler.apply(session, fresh)
        return fresh

    async def _apply_one_by_one(
        self, by_id: dict[str, Delivery], record_of: dict[str, ConsumerRecord[bytes, bytes]]
    ) -> list[Delivery]:
        """After repeated batch failures that may come from a message's data: apply the messages one by
        one, and dead-letter one that fails so on its own every time, so it cannot stop its partitions.
        Any other failure (the database away, a deadlock, a concurrent change) is raised: the batch is
        retried, and nothing is dead-lettered for it."""
        fresh: list[Delivery] = []
        for event_id, delivery in by_id.items():
            for attempt in range(1, self.attempts_alone + 1):
                try:
                    fresh.extend(await self._apply([delivery]))
                    break
                except Exception as exc:
                    if classify(exc) == "transient":
                        raise
                    if attempt == self.attempts_alone:
                        await self._dead_letter(record_of[event_id], exc, reason="apply-failed")
                    else:  # give a passing conflict (another consumer's insert) time to settle
                        await asyncio.sleep(_FIRST_BACKOFF * attempt)
        return fresh

    async def _dead_letter_undecodable(
        self, record: ConsumerRecord[bytes, bytes], exc: Exception, traceparent: str | None
    ) -> None:
        reason = decode_failure_reason(exc)
        token = traceparent_var.set(traceparent or new_traceparent(None))
        try:
            await self._dead_letter(record, exc, reason=reason)
        finally:
            traceparent_var.reset(token)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: Exception, *, reason: str) -> None:
        """Send the message to its DLQ with the reason and the error's type and location (never its
        text: it may quote the data). A failed send raises DeadLetterFailed: the batch is retried and
        its offsets are not committed past the message."""
        where = (record.topic, record.partition, record.offset)
        if where in self._dead_lettered:
            return
        detail = describe(exc)[:1000]
        headers = [
            *(record.headers or ()),
            ("dlq.reason", reason.encode()),
            ("dlq.error", detail.encode()),
            ("dlq.original.topic", record.topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
        ]
        try:
            producer = await self._ensure_dlq()
            await asyncio.wait_for(
                await producer.send(dlq_topic(record.topic), record.value, key=record.key, headers=headers), 15
            )
        except Exception as send_failure:
            CONSUMER_DLQ_FAILURES.labels(self.service, record.topic).inc()
            raise DeadLetterFailed(f"could not send to {dlq_topic(record.topic)}") from send_failure
        if len(self._dead_lettered) >= 10_000:
            self._dead_lettered.clear()
        self._dead_lettered.add(where)
        self.state.dead_lettered += 1
        CONSUMER_DLQ.labels(self.service, record.topic).inc()
        log.warning(
            "message sent to the dead-letter topic",
            extra={"topic": record.topic, "offset": record.offset, "reason": reason, "error": detail[:300]},
        )

    def _count(self, fresh: Sequence[Delivery], duplicates: int) -> None:
        self.state.processed += len(fresh)
        self.state.duplicates += duplicates
        per_topic: dict[str, int] = {}
        for d in fresh:
            per_topic[d.topic] = per_topic.get(d.topic, 0) + 1
        for topic, n in per_topic.items():
            CONSUMER_PROCESSED.labels(self.service, topic).inc(n)
        if duplicates:
            CONSUMER_DUPLICATES.labels(self.service, ",".join(self.topics)).inc(duplicates)

    @staticmethod
    def _offsets(records: list[ConsumerRecord[bytes, bytes]]) -> dict[TopicPartition, OffsetAndMetadata]:
        # Commit exactly what was processed, never "everything fetched" (commit() without arguments).
        last: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            if r.offset > last.get(key, -1):
                last[key] = r.offset
        return {TopicPartition(*key): OffsetAndMetadata(offset + 1, "") for key, offset in last.items()}

    async def prune_inbox(self, *, rounds: int = 10) -> int:
        """Forget inbox ids older than `inbox_retention` (nothing without one): up to `rounds` short
        transactions of 10,000 rows, so a large backlog is worked off over several calls."""
        if self.inbox_retention is None:
            return 0
        older_than = datetime.now(UTC) - self.inbox_retention
        pruned = 0
        for _ in range(rounds):
            async with self.sessions() as session, session.begin():
                removed = await prune(session, self.inbox, older_than)
            pruned += removed
            if removed < 10_000:
                break
        return pruned

    async def _maybe_prune(self) -> None:
        """Every ten minutes, between batches."""
        if self.inbox_retention is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 600
        pruned = await self.prune_inbox()
        if pruned:
            log.info("inbox pruned", extra={"rows": pruned})

    async def _watch(self, consumer: AIOKafkaConsumer, progressed: bool) -> None:
        """Export lag; rebuild the consumer when it has work but makes no progress (aiokafka #1154)."""
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            partition_lag = max(highwater - position, 0)
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(partition_lag)
            lag += partition_lag
        self.state.lag = lag
        if progressed or lag == 0:
            self.state.last_progress = time.monotonic()
        elif time.monotonic() - self.state.last_progress > self.stall_timeout:
            log.warning("consumer stalled with %d messages pending; rebuilding it", lag)
            CLIENT_REBUILDS.labels(self.service, "consumer").inc()
            await self._close()
            self.state.last_progress = time.monotonic()

    async def _ensure_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = new_consumer(
                self.bootstrap_servers,
                group_id=self.group_id,
                client_id=f"{self.service}-consumer",
                max_poll_records=self.max_batch,
            )
            consumer.subscribe(self.topics, listener=_FinishBatchOnRevoke(self))
            try:
                await asyncio.wait_for(consumer.start(), 30)
            except BaseException:  # a half-started consumer would stay in the group holding partitions
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)
                raise
            self._consumer = consumer
        return self._consumer

    async def _ensure_dlq(self) -> AIOKafkaProducer:
        if self._dlq is None:
            producer = new_producer(self.bootstrap_servers, client_id=f"{self.service}-dlq")
            try:
                await asyncio.wait_for(producer.start(), 15)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 10)
                raise
            self._dlq = producer
        return self._dlq

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        dlq, self._dlq = self._dlq, None
        for client in (consumer, dlq):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 10)
