"""`reporting rebuild`: replay every topic from the beginning into a fresh generation, then swap.

The live service keeps consuming into (and answering from) the current generation meanwhile. The
swap takes `rm_generation` FOR UPDATE — live batches take it FOR SHARE, so none is in flight — then
replays whatever was appended since (up to the end offsets read under that lock), flips `current`
and commits. Every message a live batch committed before the lock is below those end offsets, so the
new generation holds it; later live batches write the new generation. The inbox is not replayed: the
rebuild applies by version, which makes repeated deliveries harmless on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from common.kafka.consumer import InvalidMessage
from pydantic import ValidationError
from reporting.adapters.tables import (
    aggregates,
    agreement_orgs,
    agreement_regions,
    bodies,
    country_refs,
    event_facts,
    generation,
    metrics,
)
from reporting.projections.changes import Change, decode_message
from reporting.projections.store import apply_changes
from reporting.read.queries import catalogue_codes
from reporting.stream.changes_channel import announce
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)
CHUNK = 50_000  # aggregates applied per transaction: the counter and country rows are written once each
REBUILD_LOCK = 7_304_221  # an arbitrary advisory-lock key, the same in every process
PROJECTION_TABLES = (metrics, country_refs, aggregates, event_facts, agreement_regions, agreement_orgs, bodies)


@dataclass
class RebuildReport:
    generation: int
    previous_generation: int
    messages: int
    applied: int
    invalid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def _allocate(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                select(generation.c.current, generation.c.next).where(generation.c.id == 1).with_for_update()
            )
        ).one()
        new_gen = int(row.next)
        await session.execute(update(generation).where(generation.c.id == 1).values(next=new_gen + 1))
        for table in PROJECTION_TABLES:  # leftovers of an interrupted rebuild
            await session.execute(delete(table).where(table.c.gen != row.current))
    return new_gen


async def _drop_generation(sessions: async_sessionmaker[AsyncSession], gen: int) -> None:
    async with sessions() as session, session.begin():
        for table in PROJECTION_TABLES:
            await session.execute(delete(table).where(table.c.gen == gen))


class _Replayer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], gen: int, consumer: AIOKafkaConsumer) -> None:
        self.sessions = sessions
        self.gen = gen
        self.consumer = consumer
        self.messages = 0
        self.applied = 0
        self.invalid = 0

    async def until(self, end: dict[TopicPartition, int], max_records: int) -> None:
        """Consume and apply until every partition's position reaches `end`. Changes are gathered into
        chunks of up to `CHUNK` (only the newest version of an aggregate is kept), and the next chunk is
        fetched and decoded while the database applies the previous one."""
        in_flight: asyncio.Task[None] | None = None
        chunk: dict[tuple[str, str], Change] = {}
        try:
            while True:
                positions = {tp: await self.consumer.position(tp) for tp in end}
                caught_up = all(positions[tp] >= offset for tp, offset in end.items())
                if not caught_up:
                    batch = await self.consumer.getmany(timeout_ms=500, max_records=max_records)
                    await self._decode([r for records in batch.values() for r in records], chunk)
                if chunk and (caught_up or len(chunk) >= CHUNK):
                    if in_flight is not None:
                        task, in_flight = in_flight, None
                        await task
                    in_flight = asyncio.create_task(self._apply(list(chunk.values())))
                    chunk = {}
                if caught_up:
                    break
            if in_flight is not None:
                task, in_flight = in_flight, None
                await task
        finally:
            if in_flight is not None:
                in_flight.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await in_flight

    async def _decode(self, records: list[ConsumerRecord[bytes, bytes]], chunk: dict[tuple[str, str], Change]) -> None:
        for index, record in enumerate(records):
            if index % 256 == 255:
                await asyncio.sleep(0)  # let the chunk in flight send its next statement
            self.messages += 1
            try:
                change = decode_message(record.value or b"").value
            except (ValidationError, InvalidMessage, ValueError):
                self.invalid += 1  # the live consumer already dead-lettered it
                continue
            if change is not None:
                key = (change.kind, change.id)
                kept = chunk.get(key)
                if kept is None or change.version > kept.version:
                    chunk[key] = change

    async def _apply(self, changes: list[Change]) -> None:
        async with self.sessions() as session, session.begin():
            result = await apply_changes(session, self.gen, changes)
        self.applied += result.applied


async def assign_every_partition(
    consumer: AIOKafkaConsumer, topics: Sequence[str], timeout: float = 30.0
) -> list[TopicPartition]:
    """Without a group, subscribing assigns every partition of the topics once metadata arrives."""
    consumer.subscribe(list(topics))
    for _ in range(int(timeout / 0.02)):
        if {tp.topic for tp in consumer.assignment()} == set(topics):
            break
        await asyncio.sleep(0.02)
    return sorted(consumer.assignment())


async def _end_offsets(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    offsets = await consumer.end_offsets(list(partitions))
    return {tp: int(o) for tp, o in offsets.items()}


async def rebuild(
    sessions: async_sessionmaker[AsyncSession],
    *,
    bootstrap_servers: str,
    topics: Sequence[str],
    max_records: int = 10_000,
    keep_previous: bool = False,
) -> RebuildReport:
    started = time.perf_counter()
    async with sessions() as lock_session:  # its transaction (and the lock) ends with the rebuild
        await _lock_rebuilds(lock_session)
        return await _rebuild(sessions, started, bootstrap_servers, topics, max_records, keep_previous)


class RebuildRunning(RuntimeError):
    """Another `reporting rebuild` holds the lock."""


async def _lock_rebuilds(session: AsyncSession) -> None:
    """One rebuild at a time (PostgreSQL: a transaction-level advisory lock, held until the session's
    transaction ends — so a crashed rebuild never leaves it behind on a pooled connection)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK}):
        raise RebuildRunning("another `reporting rebuild` is running")


async def _rebuild(
    sessions: async_sessionmaker[AsyncSession],
    started: float,
    bootstrap_servers: str,
    topics: Sequence[str],
    max_records: int,
    keep_previous: bool,
) -> RebuildReport:
    new_gen = await _allocate(sessions)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,  # a fresh reader at the beginning of every partition; commits nothing
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=max_records,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await assign_every_partition(consumer, topics)
        await consumer.seek_to_beginning(*partitions)
        replayer = _Replayer(sessions, new_gen, consumer)
        await replayer.until(await _end_offsets(consumer, partitions), max_records)
        log.info("rebuild caught up; swapping", extra={"generation": new_gen, "messages": replayer.messages})
        async with sessions() as session, session.begin():
            row = (
                await session.execute(select(generation.c.current).where(generation.c.id == 1).with_for_update())
            ).one()
            previous = int(row.current)
            # Live batches are held at their FOR SHARE: replay what they committed before the lock.
            await replayer.until(await _end_offsets(consumer, partitions), max_records)
            await session.execute(
                update(generation).where(generation.c.id == 1).values(current=new_gen, swapped_at=datetime.now(UTC))
            )
            if session.get_bind().dialect.name == "postgresql":
                # Every region may read differently now (a group's members changed): the running
                # processes' streams republish them all when the swap commits.
                await announce(session, catalogue_codes())
    finally:
        await consumer.stop()
    if not keep_previous:
        await _drop_generation(sessions, previous)
    seconds = time.perf_counter() - started
    return RebuildReport(new_gen, previous, replayer.messages, replayer.applied, replayer.invalid, seconds)
