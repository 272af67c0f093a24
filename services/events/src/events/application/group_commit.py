"""Group commit for single requests: what arrives while earlier writes are running is written together.

At most `max_in_flight` groups are being written at once. A request that finds a free slot is written
at once, alone or with whatever arrived in the same turn of the event loop, so a quiet service
answers as soon as before. Under load the slots are busy, requests wait for the next group, and one
statement and one commit serve many of them: PostgreSQL's per-statement work and the API's round
trip were most of a single POST's cost (bench/events/README.md).

Every request gets its own answer only after its own row is committed; `write` may answer one
request of a group with an exception of its own. A group that fails is written again one request at
a time when `isolate(exc)` says the error may be one request's doing, so one request's bad row does
not fail the others; the first error that is not (the database itself failing) fails the rest at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

Waiting = tuple[Item, "asyncio.Future[Result]"]


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        *,
        max_group: int,
        max_in_flight: int,
        isolate: Callable[[BaseException], bool],
    ) -> None:
        self._write = write
        self._max_group = max_group
        self._max_in_flight = max_in_flight
        self._isolate = isolate
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """Write `item` in the next group; its result, or the exception its write raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._writers) < self._max_in_flight:
            self._start_writer()
        try:
            # Shielded: a caller that goes away (client disconnect) leaves its group to finish.
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_read_outcome)
            raise

    async def drain(self) -> None:
        """Wait until every group submitted so far is written (at shutdown, before the pool closes).
        Cancelling the drain leaves the writes to finish."""
        while self._writers:
            await asyncio.wait(set(self._writers))

    def _start_writer(self) -> None:
        writer = asyncio.get_running_loop().create_task(self._write_pending())
        self._writers.add(writer)
        writer.add_done_callback(self._writers.discard)  # also for a writer cancelled before it ran

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                group = self._pending[: self._max_group]
                del self._pending[: self._max_group]
                await self._write_group(group)
        finally:
            # In the same step as the last look at `_pending` (no await between): a request queued
            # from now on finds a free slot and starts a writer of its own.
            self._writers.discard(asyncio.current_task())
            if self._pending and len(self._writers) < self._max_in_flight:
                self._start_writer()  # this one was cancelled with requests still waiting

    async def _write_group(self, group: list[Waiting[Item, Result]]) -> None:
        try:
            results = await self._write([item for item, _future in group])
            if len(results) != len(group):
                raise RuntimeError(f"{len(results)} results for a group of {len(group)}")
        except BaseException as exc:  # every waiter gets an answer, whatever happened
            if isinstance(exc, Exception) and len(group) > 1 and self._isolate(exc):
                await self._write_one_by_one(group)
                return
            _fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_item, future), result in zip(group, results, strict=True):
            _answer(future, result)

    async def _write_one_by_one(self, group: list[Waiting[Item, Result]]) -> None:
        for index, (item, future) in enumerate(group):
            try:
                [result] = await self._write([item])
            except BaseException as exc:
                if isinstance(exc, Exception) and self._isolate(exc):
                    _fail([(item, future)], exc)  # this request's own row
                    continue
                _fail(group[index:], exc)  # the database itself: no use trying the rest
                if not isinstance(exc, Exception):
                    raise
                return
            _answer(future, result)


def _answer(future: asyncio.Future[Result], result: Result | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _fail(group: Sequence[Waiting[Item, Result]], exc: BaseException) -> None:
    for _item, future in group:
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)


def _read_outcome(future: asyncio.Future[Any]) -> None:
    """The answer of a request whose caller left, read so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
