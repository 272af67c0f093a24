"""`reporting rebuild`: replay every topic from the beginning into a fresh generation, then swap.

The live service keeps consuming into (and answering from) the current generation meanwhile. The
swap takes `rm_generation` FOR UPDATE — live batches take it FOR SHARE, so none is in flight — then
replays whatever was appended since (up to the end offsets read under that lock), flips `current`
and commits. Every message a live batch committed before the lock is below those end offsets, so the
new generation holds it; later live batches write the new generation. The inbox is not replayed: the
rebuild applies by version, which makes repeated deliveries harmless on their own.

With `workers` above 1 the replay up to the end offsets read at the start is split between that many
processes (`rebuild/worker.py`), each taking whole partitions — every aggregate's messages share a key, so
one partition, so one process, which keeps the newest-version-per-chunk step valid. The consumer process
is CPU-bound (bench/reporting/README.md), so on two cores two processes replay ~1.4× faster. The tail
and the swap stay in this process.

Poison messages (rebuild/failures.py: undecodable, out of the contract's bounds, or failing to apply on their
own) are skipped and named at the end — as the live consumer dead-letters them — in one process or
several; a transient failure (the database or the broker gone) fails the rebuild, leaving the live
figures. A rebuild refuses to start, or to swap, when a partition's log starts above offset 0: the
topics are compacted, which keeps the start at 0, so a later start means records were deleted
(retention, `kafka-delete-records`) and a replay would lose figures the live generation holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from common.kafka.failures import decode_failure_reason
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from reporting.adapters.writers import generation_store, projection_writer
from reporting.projections.apply import apply_changes
from reporting.projections.changes import Change, decode_message
from reporting.read.queries import catalogue_codes
from reporting.rebuild.failures import apply_failure_is_poison

log = logging.getLogger(__name__)
CHUNK = 50_000  # aggregates applied per transaction: the counter and country rows are written once each
PROGRESS_SECONDS = 5.0
LINKED_TOPIC = "exchange.partners.v1"  # its aggregates refer to one another (agreements name organizations)
PROJECTION_TABLES = (metrics, country_refs, aggregates, event_facts, agreement_regions, agreement_orgs, bodies)
MAX_NAMED = 10_000  # skipped messages named in the report (all are counted and logged)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass(frozen=True)
class Skipped:
    """A poison message the rebuild left out, named as the live consumer's dead-letter headers name it."""

    message_id: str | None  # the CloudEvent id (None: not even that could be read)
    topic: str
    partition: int
    offset: int
    reason: str  # invalid-envelope | invalid-data | apply-failed

    def __str__(self) -> str:
        return f"{self.message_id or '(no id)'} at {self.topic}/{self.partition}@{self.offset}: {self.reason}"


@dataclass
class RebuildReport:
    generation: int
    previous_generation: int
    messages: int
    applied: int
    invalid: int  # skipped at decode
    seconds: float
    apply_failed: int = 0  # skipped because their apply failed on its own
    skipped: list[Skipped] = field(default_factory=list)  # up to MAX_NAMED of both

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


class Replayer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gen: int,
        consumer: AIOKafkaConsumer,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.gen = gen
        self.consumer = consumer
        self.progress = progress  # called with the messages replayed so far, every PROGRESS_SECONDS
        self.messages = 0
        self.applied = 0
        self.invalid = 0
        self.apply_failed = 0
        self.skipped: list[Skipped] = []
        self._reported = time.monotonic()

    async def until(self, end: dict[TopicPartition, int], max_records: int) -> None:
        """Consume and apply until every partition's position reaches `end`. Changes are gathered into
        chunks of up to `CHUNK` (only the newest version of an aggregate is kept), and the next chunk is
        fetched and decoded while the database applies the previous one."""
        in_flight: asyncio.Task[None] | None = None
        chunk: dict[tuple[str, str], tuple[Change, Record]] = {}
        try:
            while True:
                positions = {tp: await self.consumer.position(tp) for tp in end}
                caught_up = all(positions[tp] >= offset for tp, offset in end.items())
                if not caught_up:
                    batch = await self.consumer.getmany(timeout_ms=500, max_records=max_records)
                    await self._decode([r for records in batch.values() for r in records], chunk)
                    if self.progress is not None and time.monotonic() - self._reported >= PROGRESS_SECONDS:
                        self._reported = time.monotonic()
                        self.progress(self.messages)
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

    async def _decode(self, records: list[Record], chunk: dict[tuple[str, str], tuple[Change, Record]]) -> None:
        for index, record in enumerate(records):
            if index % 256 == 255:
                await asyncio.sleep(0)  # let the chunk in flight send its next statement
            self.messages += 1
            try:
                change = decode_message(record.value or b"").value
            except Exception as exc:  # as live: whatever decoding trips on, retrying cannot fix (dead-lettered)
                self.invalid += 1
                self._skip(record, decode_failure_reason(exc), exc)
                continue
            if change is not None:
                key = (change.kind, change.id)
                kept = chunk.get(key)
                if kept is None or change.version > kept[0].version:
                    chunk[key] = (change, record)

    async def _apply(self, items: list[tuple[Change, Record]]) -> None:
        """Apply in one transaction. When that fails and the failure is not transient, apply each half
        on its own, down to the single message that fails alone: that one is poison, skipped and named."""
        try:
            await self._write([change for change, _ in items])
            return
        except Exception as exc:
            if len(items) > 1:
                if not await apply_failure_is_poison(exc, self.sessions):
                    raise
            else:
                await self._apply_alone_again(items[0], exc)
                return
        middle = len(items) // 2
        await self._apply(items[:middle])
        await self._apply(items[middle:])

    async def _apply_alone_again(self, item: tuple[Change, Record], first: Exception) -> None:
        """A message failed alone: it is poison when it fails alone again and the failure is not transient."""
        if not await apply_failure_is_poison(first, self.sessions):
            raise first
        try:
            await self._write([item[0]])
        except Exception as exc:
            if not await apply_failure_is_poison(exc, self.sessions):
                raise
            self.apply_failed += 1
            self._skip(item[1], "apply-failed", exc)

    async def _write(self, changes: list[Change]) -> None:
        async with self.sessions() as session, session.begin():
            result = await apply_changes(projection_writer(session), self.gen, changes)
        self.applied += result.applied

    def _skip(self, record: Record, reason: str, exc: Exception) -> None:
        skipped = Skipped(_message_id(record.value or b""), record.topic, record.partition, record.offset, reason)
        if len(self.skipped) < MAX_NAMED:
            self.skipped.append(skipped)
        log.warning(
            "rebuild skipped a poison message",
            extra={
                "message_id": skipped.message_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
                "error": f"{type(exc).__name__}: {exc}"[:200],
            },
        )


def _message_id(raw: bytes) -> str | None:
    """The CloudEvent id of a message that may not even be JSON (only for naming skipped messages)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    message_id = value.get("id") if isinstance(value, dict) else None
    return message_id[:200] if isinstance(message_id, str) else None


Say = Callable[[str], None]  # where progress lines go (the CLI: stderr)


def progress_reporter(say: Say, name: str, total: int) -> Callable[[int], None]:
    """Progress lines for an operator watching a long rebuild: `name: n of total messages (x/s)`."""
    started = time.monotonic()

    def report(messages: int) -> None:
        rate = messages / max(time.monotonic() - started, 1e-9)
        say(f"{name}: {messages:,} of {total:,} messages replayed ({rate:,.0f}/s)")

    return report


def open_reader(bootstrap_servers: str, max_records: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,  # a fresh reader at the beginning of every partition; commits nothing
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=max_records,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )


def prepare_process() -> None:
    """What a replaying process does first: load the region catalogue, then tune the collector (which
    freezes what is loaded by then, the catalogue included)."""
    from common.regions import default_catalogue
    from common.runtime import tune_gc_for_batches

    default_catalogue().regions_of_country("DE")
    tune_gc_for_batches()


def split_partitions(
    sizes: Mapping[TopicPartition, int], workers: int, whole_topics: Collection[str] = ()
) -> list[list[TopicPartition]]:
    """Partitions into at most `workers` shares of about equal messages: the largest unit first, each
    to the share with the fewest so far. A unit is one partition, or every partition of a topic in
    `whole_topics`. Empty partitions are left out, and so are empty shares."""
    units: dict[object, list[TopicPartition]] = {}
    for tp in sorted(tp for tp, n in sizes.items() if n > 0):
        units.setdefault(tp.topic if tp.topic in whole_topics else tp, []).append(tp)
    shares: list[tuple[int, list[TopicPartition]]] = [(0, []) for _ in range(max(workers, 1))]
    for unit in sorted(units.values(), key=lambda members: (-sum(sizes[tp] for tp in members), members[0])):
        index = min(range(len(shares)), key=lambda i: shares[i][0])
        total, members = shares[index]
        shares[index] = (total + sum(sizes[tp] for tp in unit), [*members, *unit])
    return [sorted(members) for _, members in shares if members]


class RebuildWorkerFailed(RuntimeError):
    """A replaying process failed; the rebuild stops and the live generation stays as it was."""


async def _replay_in_processes(
    database_url: str,
    bootstrap_servers: str,
    gen: int,
    shares: Sequence[Sequence[TopicPartition]],
    end: Mapping[TopicPartition, int],
    max_records: int,
    progress: bool,
) -> list[dict[str, Any]]:
    """Run one `rebuild/worker.py` process per share and gather their counts; if one fails, the others are killed."""
    processes = []
    try:
        for _ in shares:
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "reporting.rebuild.worker",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )

        async def run(process: asyncio.subprocess.Process, share: Sequence[TopicPartition]) -> dict[str, Any]:
            job = {
                "database_url": database_url,
                "bootstrap_servers": bootstrap_servers,
                "generation": gen,
                "max_records": max_records,
                "partitions": [[tp.topic, tp.partition, end[tp]] for tp in share],
                "progress": progress,
            }
            assert process.stdin is not None and process.stdout is not None
            # One line, and stdin stays open: the worker exits when it closes, so it never outlives
            # this process, however this one ends.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it died at once: see its status
                process.stdin.write(json.dumps(job).encode() + b"\n")
                await process.stdin.drain()
            out = await process.stdout.read()
            if await process.wait() != 0:
                raise RebuildWorkerFailed(f"a rebuild worker exited with status {process.returncode} (its log: stderr)")
            counts: dict[str, Any] = json.loads(out)
            return counts

        return await asyncio.gather(*(run(p, share) for p, share in zip(processes, shares, strict=True)))
    finally:
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()
            if process.returncode is None:
                process.kill()
                await process.wait()


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
    workers: int = 1,
    progress: Say | None = None,
) -> RebuildReport:
    """`workers` above 1 replays in that many processes (PostgreSQL only), each reaching the database
    through the URL of the sessions' engine."""
    started = time.perf_counter()
    async with sessions() as lock_session:  # its transaction (and the lock) ends with the rebuild
        store = generation_store(lock_session)
        if workers > 1 and not store.replays_in_processes:
            raise ValueError("a rebuild in several processes needs PostgreSQL")
        if not await store.lock_rebuilds():
            raise RebuildRunning("another `reporting rebuild` is running")
        return await _rebuild(
            sessions, started, bootstrap_servers, topics, max_records, keep_previous, workers, progress
        )


class RebuildRunning(RuntimeError):
    """Another `reporting rebuild` holds the lock."""


class RebuildRefused(RuntimeError):
    """Records were deleted from a topic: a replay would lose figures. The live generation stays."""


async def refuse_deleted_records(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
    """Compaction keeps a partition's log start at 0; a start above it means records were deleted."""
    starts = await consumer.beginning_offsets(list(partitions))
    deleted = [f"{tp.topic}/{tp.partition} starts at offset {starts[tp]}" for tp in partitions if starts[tp] > 0]
    if deleted:
        raise RebuildRefused(
            "records were deleted from the topics (" + ", ".join(deleted) + "): a replay would lose the "
            "figures they hold, so the live figures stay. The topics must be log-compacted "
            "(cleanup.policy=compact), never deleted from."
        )


async def _rebuild(
    sessions: async_sessionmaker[AsyncSession],
    started: float,
    bootstrap_servers: str,
    topics: Sequence[str],
    max_records: int,
    keep_previous: bool,
    workers: int,
    progress: Say | None,
) -> RebuildReport:
    consumer = open_reader(bootstrap_servers, max_records)
    await consumer.start()
    try:
        partitions = await assign_every_partition(consumer, topics)
        await refuse_deleted_records(consumer, partitions)
        new_gen = await _allocate(sessions)
        await consumer.seek_to_beginning(*partitions)
        end = await _end_offsets(consumer, partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        total = sum(end[tp] - int(beginnings[tp]) for tp in partitions)
        report = progress_reporter(progress, "rebuild", total) if progress is not None else None
        replayer = Replayer(sessions, new_gen, consumer, report)
        # Organizations and agreements refer to each other: one process replays the partners topic,
        # so its batches need not wait on one another for the lock that orders them (adapters/postgresql.py).
        linked = {topic for topic in topics if topic.endswith(LINKED_TOPIC)}
        shares = split_partitions({tp: end[tp] - int(beginnings[tp]) for tp in partitions}, workers, linked)
        if len(shares) > 1:
            for tp in partitions:  # nothing for this consumer to fetch meanwhile
                consumer.seek(tp, end[tp])
            url = sessions.kw["bind"].url.render_as_string(hide_password=False)
            if progress is not None:
                progress(f"rebuild: replaying {total:,} messages in {len(shares)} processes")
            replayed = await _replay_in_processes(
                url, bootstrap_servers, new_gen, shares, end, max_records, progress is not None
            )
            for counts in replayed:
                replayer.messages += counts["messages"]
                replayer.applied += counts["applied"]
                replayer.invalid += counts["invalid"]
                replayer.apply_failed += counts["apply_failed"]
                replayer.skipped += [Skipped(**named) for named in counts["skipped"]]
                for topic, partition, offset in counts["positions"]:  # a worker may have read past `end`
                    consumer.seek(TopicPartition(topic, partition), offset)
        else:
            await replayer.until(end, max_records)
        log.info("rebuild caught up; swapping", extra={"generation": new_gen, "messages": replayer.messages})
        async with sessions() as session, session.begin():
            row = (
                await session.execute(select(generation.c.current).where(generation.c.id == 1).with_for_update())
            ).one()
            previous = int(row.current)
            # Live batches are held at their FOR SHARE: replay what they committed before the lock.
            await replayer.until(await _end_offsets(consumer, partitions), max_records)
            await refuse_deleted_records(consumer, partitions)  # none deleted while replaying either
            await session.execute(
                update(generation).where(generation.c.id == 1).values(current=new_gen, swapped_at=datetime.now(UTC))
            )
            # Every region may read differently now (a group's members changed): the running
            # processes' streams republish them all when the swap commits.
            await generation_store(session).announce_swap(catalogue_codes())
    finally:
        await consumer.stop()
    if not keep_previous:
        await _drop_generation(sessions, previous)
    seconds = time.perf_counter() - started
    skipped = sorted(replayer.skipped, key=lambda s: (s.topic, s.partition, s.offset))[:MAX_NAMED]
    if skipped:
        log.warning(
            "rebuild skipped poison messages",
            extra={"count": replayer.invalid + replayer.apply_failed, "skipped": [str(s) for s in skipped[:100]]},
        )
    return RebuildReport(
        new_gen,
        previous,
        replayer.messages,
        replayer.applied,
        replayer.invalid,
        seconds,
        replayer.apply_failed,
        skipped,
    )


def skipped_as_json(skipped: Sequence[Skipped]) -> list[dict[str, Any]]:
    return [asdict(s) for s in skipped]
