"""Group commit: requests that arrive while a write runs go together in the next one, each gets its
own answer, one bad request cannot fail the others, and nobody is left waiting."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from events.adapters.postgres import PostgresEventStore
from events.application.group_commit import GroupCommit


class Writes:
    """A fake write: records its groups; holds until released when `hold` is set; 'bad' items fail."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, items: list[str]) -> list[str]:
        self.groups.append(items)
        await self.hold.wait()
        if "bad" in items:
            raise ValueError("a row the database refuses")
        return [f"written {item}" for item in items]


def grouped(writes: Writes, *, in_flight: int = 1, max_group: int = 100, isolate: bool = True) -> GroupCommit:
    return GroupCommit(writes, max_group=max_group, max_in_flight=in_flight, isolate=lambda _exc: isolate)


async def test_what_arrives_during_a_write_goes_in_the_next_group_and_each_gets_its_answer():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes)
    first = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0.01)  # "a" is being written
    rest = [asyncio.create_task(commit.submit(name)) for name in "bcde"]
    await asyncio.sleep(0.01)
    writes.hold.set()
    assert await first == "written a"
    assert await asyncio.gather(*rest) == ["written b", "written c", "written d", "written e"]
    assert writes.groups == [["a"], ["b", "c", "d", "e"]]


async def test_a_quiet_service_writes_each_request_at_once():
    writes = Writes()
    commit = grouped(writes, in_flight=2)
    assert await commit.submit("a") == "written a"
    assert await commit.submit("b") == "written b"
    assert writes.groups == [["a"], ["b"]]


async def test_groups_are_bounded():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes, max_group=2)
    tasks = [asyncio.create_task(commit.submit(str(n))) for n in range(5)]
    await asyncio.sleep(0.01)
    writes.hold.set()
    await asyncio.gather(*tasks)
    assert [len(group) for group in writes.groups] == [2, 2, 1]


async def test_a_bad_request_fails_alone_when_the_error_may_be_its_own():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes)
    blocker = asyncio.create_task(commit.submit("x"))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(commit.submit(name)) for name in ("a", "bad", "c")]
    await asyncio.sleep(0.01)
    writes.hold.set()
    await blocker
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "written a" and results[2] == "written c"
    assert isinstance(results[1], ValueError)
    assert writes.groups[1:] == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_an_error_of_the_whole_group_fails_every_request_of_it():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes, isolate=False)
    blocker = asyncio.create_task(commit.submit("x"))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(commit.submit(name)) for name in ("a", "bad")]
    await asyncio.sleep(0.01)
    writes.hold.set()
    await blocker
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert len(writes.groups) == 2  # not retried one by one


async def test_a_caller_that_goes_away_does_not_stop_its_group():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes)
    leaving = asyncio.create_task(commit.submit("a"))
    staying = asyncio.create_task(commit.submit("b"))
    await asyncio.sleep(0.01)
    leaving.cancel()
    writes.hold.set()
    assert await staying == "written b"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert writes.groups == [["a", "b"]]  # "a" was written all the same


async def test_a_write_with_the_wrong_number_of_results_fails_its_requests_instead_of_hanging():
    async def short(items: list[str]) -> list[str]:
        return items[:-1]

    commit: GroupCommit[str, str] = GroupCommit(short, max_group=10, max_in_flight=1, isolate=lambda _e: False)
    with pytest.raises(RuntimeError, match="0 results for a group of 1"):
        await asyncio.wait_for(commit.submit("a"), 5)


async def test_drain_waits_for_the_writes_under_way():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes)
    task = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0.01)
    drained = asyncio.create_task(commit.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    writes.hold.set()
    await drained
    assert task.done() and task.result() == "written a"


async def test_a_request_queued_while_the_writers_finish_is_still_written():
    # The writers and a new request wake in the same turn of the loop (the database's answers and
    # an HTTP request read in one select): the request must find a free slot, not a finished writer.
    gate = asyncio.Event()

    async def write(items: list[str]) -> list[str]:
        await gate.wait()
        return [f"written {item}" for item in items]

    for in_flight in (1, 2):
        commit: GroupCommit[str, str] = GroupCommit(
            write, max_group=10, max_in_flight=in_flight, isolate=lambda _e: False
        )
        gate.clear()
        firsts = []
        for n in range(in_flight):
            firsts.append(asyncio.create_task(commit.submit(f"first {n}")))
            await asyncio.sleep(0)
            await asyncio.sleep(0)

        async def late(commit: GroupCommit[str, str]) -> str:
            await gate.wait()
            return await commit.submit("late")

        late_task = asyncio.create_task(late(commit))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*firsts)
        assert await asyncio.wait_for(late_task, 2) == "written late"


async def test_the_database_failing_during_the_one_by_one_retry_fails_the_rest_at_once():
    calls: list[list[str]] = []

    async def write(items: list[str]) -> list[str]:
        calls.append(items)
        if len(items) > 1:
            raise ValueError("a row refused")
        raise ConnectionError("the database is gone")

    commit: GroupCommit[str, str] = GroupCommit(
        write, max_group=10, max_in_flight=1, isolate=lambda exc: isinstance(exc, ValueError)
    )
    tasks = [asyncio.create_task(commit.submit(name)) for name in "abcd"]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert calls == [["a", "b", "c", "d"], ["a"]]  # not once more per request


async def test_a_write_may_fail_one_request_of_its_group():
    async def write(items: list[str]) -> list[str | BaseException]:
        return [LookupError(item) if item == "b" else f"written {item}" for item in items]

    commit: GroupCommit[str, str] = GroupCommit(write, max_group=10, max_in_flight=1, isolate=lambda _e: False)
    a, b, c = (asyncio.create_task(commit.submit(name)) for name in "abc")
    assert await a == "written a" and await c == "written c"
    with pytest.raises(LookupError):  # raised to its caller, not handed over as a value
        await b


async def test_cancelling_the_drain_leaves_the_writes_to_finish():
    writes = Writes()
    writes.hold.clear()
    commit = grouped(writes)
    task = asyncio.create_task(commit.submit("a"))
    await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(commit.drain(), 0.01)
    writes.hold.set()
    assert await task == "written a"


@pytest.mark.parametrize(
    ("error", "one_rows_doing"),
    [
        (asyncpg.CharacterNotInRepertoireError("invalid byte sequence"), True),
        (asyncpg.NumericValueOutOfRangeError("out of range"), True),
        (asyncpg.ProgramLimitExceededError("index row too big"), True),
        (asyncpg.DeadlockDetectedError("deadlock"), True),
        (ValueError("cannot encode"), True),
        (asyncpg.CannotConnectNowError("starting up"), False),
        (asyncpg.AdminShutdownError("shutting down"), False),
        (asyncpg.TooManyConnectionsError("too many"), False),
        (asyncpg.QueryCanceledError("statement timeout"), False),
        (asyncpg.ReadOnlySQLTransactionError("read only"), False),
        (ConnectionResetError("lost"), False),
    ],
)
def test_only_errors_one_row_can_cause_are_retried_one_by_one(error, one_rows_doing):
    assert PostgresEventStore.is_row_error(error) is one_rows_doing
