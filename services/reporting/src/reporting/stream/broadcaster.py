"""In-process fan-out of per-region metric changes to Server-Sent-Event subscribers.

After every committed consumer batch the projection tells the broadcaster which regions changed. Each
region is published at most once per coalescing window, leading edge first: an isolated change goes
out at once, a burst of a thousand events sends a handful of messages per region. Every message has a
monotonically increasing id (starting from the process's start time, so ids also increase across
restarts) and the last `buffer` messages are kept, so a client reconnecting with `Last-Event-ID` gets
what it missed — or, when that is too old or from another process, a full snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.read.queries import catalogue_codes, region_objects

log = logging.getLogger(__name__)
STREAM_SUBSCRIBERS = Gauge("reporting_stream_subscribers", "Open SSE subscriptions", multiprocess_mode="livesum")
STREAM_MESSAGES = Counter("reporting_stream_messages_total", "Region messages published to the SSE stream")
STREAM_DROPPED = Counter("reporting_stream_slow_clients_total", "Subscribers closed because they fell behind")
STREAM_SNAPSHOTS = Counter("reporting_stream_snapshots_total", "Full snapshots read for resuming streams")
STREAM_REFUSED = Counter("reporting_stream_refused_total", "Streams refused: the process has its maximum open")
YEAR_RETENTION_SECONDS = 600.0
MAX_YEARS = 6
MAX_RETRY_DELAY = 5.0  # between publish attempts while the database is away
FAILURE_WARNING_INTERVAL = 30.0
# A snapshot is shared by every stream resuming while nothing was published since it was read, for at
# most this long (its `as_of` and "expiring in 90 days" stay fresh): a reconnect storm reads it once.
SNAPSHOT_REUSE_SECONDS = 5.0


class TooManySubscribers(Exception):
    """The process has `max_subscribers` streams open."""


@dataclass(frozen=True)
class StreamMessage:
    id: int
    year: int
    region: str
    data: str

    @functools.cached_property
    def encoded(self) -> bytes:
        """The SSE frame, encoded once however many subscribers receive it."""
        return f"event: metrics\r\nid: {self.id}\r\ndata: {self.data}\r\n\r\n".encode()


@dataclass(eq=False)
class Subscription:
    year: int
    queue: asyncio.Queue[StreamMessage | None]
    backlog: list[StreamMessage] = field(default_factory=list)
    overflowed: bool = False


class MetricsBroadcaster:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        coalesce_ms: int = 150,
        buffer: int = 2048,
        queue_size: int = 256,
        max_subscribers: int = 10_000,
    ) -> None:
        self.sessions = sessions
        self.max_subscribers = max_subscribers
        self.window = coalesce_ms / 1000
        self.queue_size = queue_size
        self._ring: deque[StreamMessage] = deque(maxlen=buffer)
        self._subscribers: set[Subscription] = set()
        self._pending: set[str] = set()
        self._next_allowed: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._last_id = int(time.time() * 1000) * 1000
        self._first_id = self._last_id + 1
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.flushes = 0
        self._known = set(catalogue_codes())
        self._years: dict[int, float] = {}
        self.publish_failures = 0  # in this process's life
        self._failures_unreported = 0
        self._next_warning = 0.0
        self._retry_delay = 0.0  # 0 while publishing works
        # year → (last id when it was read, when, the read): see SNAPSHOT_REUSE_SECONDS
        self._snapshots: dict[int, tuple[int, float, asyncio.Task[list[StreamMessage]]]] = {}

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-broadcaster")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_id(self) -> int:
        return self._last_id

    # --- producers -------------------------------------------------------------------------------
    def notify(self, regions: Iterable[str]) -> None:
        """Called after a committed batch with the regions whose figures changed."""
        fresh = {r for r in regions if r in self._known}
        if fresh:
            self._pending |= fresh
            self._wake.set()

    def notify_all(self) -> None:
        """Every region may have changed (announcements were missed): publish them all once."""
        self.notify(self._known)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                now = time.monotonic()
                ready = {r for r in self._pending if self._next_allowed.get(r, 0.0) <= now}
                if ready:
                    self._pending -= ready
                    for region in ready:
                        self._next_allowed[region] = now + self.window
                    try:
                        await self._publish(sorted(ready))
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # a failed read must not end the stream: retry later
                        self._pending |= ready
                        await asyncio.sleep(self._failed(exc))
                    else:
                        self._recovered()
                if self._pending:
                    delay = min(self._next_allowed.get(r, 0.0) for r in self._pending) - time.monotonic()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), delay)
                        self._wake.clear()

    def _failed(self, exc: Exception) -> float:
        """Count a failed publish; returns the delay before the next attempt, doubling up to a cap. An
        outage (the database away) fails every attempt: one warning per interval says so, with a count."""
        self.publish_failures += 1
        self._failures_unreported += 1
        now = time.monotonic()
        if now >= self._next_warning:
            log.warning(
                "could not publish metric changes (%d failed attempts since the last warning), retrying: %s: %s",
                self._failures_unreported,
                type(exc).__name__,
                exc,
            )
            self._failures_unreported = 0
            self._next_warning = now + FAILURE_WARNING_INTERVAL
        self._retry_delay = min(max(self._retry_delay * 2, self.window), MAX_RETRY_DELAY)
        return self._retry_delay

    def _recovered(self) -> None:
        if self._retry_delay:
            log.info("publishing metric changes resumed after %d failed attempts", self.publish_failures)
            self._retry_delay = 0.0
            self._failures_unreported = 0
            self._next_warning = 0.0

    async def _publish(self, regions: list[str]) -> None:
        now = time.monotonic()
        for sub in self._subscribers:
            self._years[sub.year] = now
        # Years subscribed recently stay published, so a client that reconnects can resume.
        self._years = {y: t for y, t in self._years.items() if now - t < YEAR_RETENTION_SECONDS}
        years = {0} | set(sorted(self._years, key=self._years.__getitem__)[-MAX_YEARS:])
        messages: list[StreamMessage] = []
        async with self.sessions() as session:
            for year in sorted(years):
                for obj in await region_objects(session, regions, year):
                    self._last_id += 1
                    messages.append(StreamMessage(self._last_id, year, obj["region"], json.dumps(obj)))
        self.flushes += 1
        self._ring.extend(messages)
        for sub in list(self._subscribers):
            for message in messages:
                if message.year != sub.year:
                    continue
                try:
                    sub.queue.put_nowait(message)
                except asyncio.QueueFull:  # a slow client: close it; it resumes with Last-Event-ID
                    sub.overflowed = True
                    self._drop(sub)
                    break
        self.published += len(messages)
        STREAM_MESSAGES.inc(len(messages))

    def _drop(self, sub: Subscription) -> None:
        STREAM_DROPPED.inc()
        self.unsubscribe(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    # --- subscribers -----------------------------------------------------------------------------
    async def subscribe(self, year: int, last_event_id: str | None) -> Subscription:
        """Raises TooManySubscribers when the process has `max_subscribers` streams open."""
        if len(self._subscribers) >= self.max_subscribers:
            STREAM_REFUSED.inc()
            raise TooManySubscribers(f"This process serves at most {self.max_subscribers} streams.")
        sub = Subscription(year=year, queue=asyncio.Queue(self.queue_size))
        # Subscribed before the backlog is read, so nothing published meanwhile is missed.
        self._subscribers.add(sub)
        STREAM_SUBSCRIBERS.set(len(self._subscribers))
        self._years[year] = time.monotonic()
        if last_event_id is not None:
            try:
                sub.backlog = await self._missed(year, last_event_id)
            except BaseException:  # the database away: the request fails (503), the subscription goes
                self.unsubscribe(sub)
                raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        STREAM_SUBSCRIBERS.set(len(self._subscribers))

    async def _missed(self, year: int, last_event_id: str) -> list[StreamMessage]:
        try:
            last = int(last_event_id)
        except ValueError:
            last = -1
        oldest = self._ring[0].id if self._ring else self._last_id + 1
        if oldest - 1 <= last <= self._last_id:
            return [m for m in self._ring if m.id > last and m.year == year]
        # Too old, or from another process: a snapshot of every region replaces the gap.
        return await self._snapshot(year)

    async def _snapshot(self, year: int) -> list[StreamMessage]:
        """Every region's figures. Reused while no message was published since its read began (the
        caller is subscribed already, so whatever changed later reaches it as a message) and it is young."""
        now = time.monotonic()
        cached = self._snapshots.get(year)
        if cached is None or cached[0] != self._last_id or now - cached[1] > SNAPSHOT_REUSE_SECONDS:
            read = asyncio.create_task(self._read_snapshot(year), name="stream-snapshot")
            read.add_done_callback(functools.partial(self._forget_failed, year))
            cached = self._snapshots[year] = (self._last_id, now, read)
        # Shielded: a client that goes away mid-read does not cancel the read the others wait for.
        return await asyncio.shield(cached[2])

    async def _read_snapshot(self, year: int) -> list[StreamMessage]:
        STREAM_SNAPSHOTS.inc()
        async with self.sessions() as session:
            objects = await region_objects(session, None, year)
        return [StreamMessage(self._last_id, year, obj["region"], json.dumps(obj)) for obj in objects]

    def _forget_failed(self, year: int, read: asyncio.Task[list[StreamMessage]]) -> None:
        if read.cancelled() or read.exception() is not None:  # the next stream reads again
            cached = self._snapshots.get(year)
            if cached is not None and cached[2] is read:
                del self._snapshots[year]
