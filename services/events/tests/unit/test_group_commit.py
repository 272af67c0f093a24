"""Group commit: requests that arrive while a write runs go together in the next one, each gets its
own answer, one bad request cannot fail the others, and nobody is left waiting."""

from __future__ import annotations

import asyncio

import pytest
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
