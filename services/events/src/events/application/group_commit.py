"""Group commit for single requests: what arrives while earlier writes are running is written together.

At most `max_in_flight` groups are being written at once. A request that finds a free slot is written
at once, alone or with whatever arrived in the same turn of the event loop, so a quiet service
answers as soon as before. Under load the slots are busy, requests wait for the next group, and one
statement and one commit serve many of them: PostgreSQL's per-statement work and the API's round
trip were most of a single POST's cost (bench/events/README.md, run 15).

Every request still gets its own answer only after its own row is committed. A group that fails is
written again one request at a time when `isolate(exc)` says the error may be one request's doing,
so one request's bad row cannot fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[Sequence[Result]]],
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
            writer = asyncio.create_task(self._write_pending())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # Shielded: a caller that goes away (client disconnect) leaves its group to finish.
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait until every group submitted so far is written (at shutdown, before the pool closes)."""
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)

    async def _write_pending(self) -> None:
        while self._pending:
            group = self._pending[: self._max_group]
            del self._pending[: self._max_group]
            await self._write_group(group)

    async def _write_group(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _future in group])
            if len(results) != len(group):
                raise RuntimeError(f"{len(results)} results for a group of {len(group)}")
        except BaseException as exc:  # every waiter gets an answer, whatever happened
            if isinstance(exc, Exception) and len(group) > 1 and self._isolate(exc):
                for one in group:
                    await self._write_group([one])
                return
            for _item, future in group:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_item, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)
