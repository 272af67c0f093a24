"""The ndjson stream over real HTTP on PostgreSQL: 100,000 records in chunked commits with flat memory,
a stream that breaks off keeps its committed chunks and removes nobody, and sending it again completes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from common.testing.plugin import wait_until
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ..conftest import TalentLiveServer, record

NDJSON = {"Content-Type": "application/x-ndjson"}


def _lines(records: Iterator[dict[str, Any]], batch: int = 500) -> Iterator[bytes]:
    pending: list[str] = []
    for item in records:
        pending.append(json.dumps(item))
        if len(pending) == batch:
            yield ("\n".join(pending) + "\n").encode()
            pending = []
    if pending:
        yield ("\n".join(pending) + "\n").encode()


async def _count(live: TalentLiveServer, society: str) -> int:
    engine = create_async_engine(live.settings.database_url)
    try:
        async with engine.connect() as connection:
            statement = text("SELECT count(*) FROM persons WHERE society = :s AND NOT deleted")
            return int((await connection.execute(statement, {"s": society})).scalar_one())
    finally:
        await engine.dispose()


async def _more_than(live: TalentLiveServer, society: str, count: int) -> bool:
    return await _count(live, society) > count


async def test_a_stream_of_100_000_records(live: TalentLiveServer, token) -> None:
    headers = {**NDJSON, "Authorization": token("society", "BIG", "talent:sync")}

    async def body() -> AsyncIterator[bytes]:
        for chunk in _lines(record(n) for n in range(100_000)):
            yield chunk

    async with httpx.AsyncClient(base_url=live.url, timeout=300) as client:
        answer = await client.post("/v1/talent/sync", params={"mode": "full"}, content=body(), headers=headers)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["created"], answer.json()["rejected"]) == (100_000, [])
    assert await _count(live, "BIG") == 100_000


async def test_a_broken_stream_keeps_its_chunks_removes_nobody_and_completes_when_sent_again(
    live: TalentLiveServer, token
) -> None:
    headers = {**NDJSON, "Authorization": token("society", "BRK", "talent:sync")}
    async with httpx.AsyncClient(base_url=live.url, timeout=120) as client:
        seed = [record(n) for n in range(500_000, 500_100)]  # people the full sync below does not name
        auth = {"Authorization": headers["Authorization"]}
        seeded = await client.post("/v1/talent/sync", json={"mode": "delta", "records": seed}, headers=auth)
        assert seeded.json()["created"] == 100
        pool = [record(n) for n in range(600_000, 605_000)]

        async def breaks_off() -> AsyncIterator[bytes]:
            for index, chunk in enumerate(_lines(iter(pool))):
                if index == 6:  # 3,000 records sent; break off once the first 2,000-record chunk is committed
                    await wait_until(lambda: _more_than(live, "BRK", 2_000), timeout=60)
                    raise ConnectionError("the society's network went away")
                yield chunk

        with pytest.raises((ConnectionError, httpx.HTTPError)):
            await client.post("/v1/talent/sync", params={"mode": "full"}, content=breaks_off(), headers=headers)
        committed = await _count(live, "BRK")
        assert 100 + 2_000 <= committed < 100 + 5_000  # its committed chunk stays; the seed was not removed

        async def whole() -> AsyncIterator[bytes]:
            for chunk in _lines(iter(pool)):
                yield chunk

        answer = await client.post("/v1/talent/sync", params={"mode": "full"}, content=whole(), headers=headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["created"] + result["unchanged"] == 5_000 and result["unchanged"] >= 2_000
    assert result["removed"] == 100
    assert await _count(live, "BRK") == 5_000


async def test_stream_lines_are_bounded_and_rejected_alone(live: TalentLiveServer, token) -> None:
    headers = {**NDJSON, "Authorization": token("society", "LNS", "talent:sync")}
    lines = [json.dumps(record(700_000)), "[1, 2]", "not json", "x" * 300_000, "", json.dumps(record(700_001))]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        answer = await client.post("/v1/talent/sync", content="\n".join(lines).encode(), headers=headers)
        bad_option = await client.post("/v1/talent/sync", params={"mode": "x"}, content=b"", headers=headers)
    assert answer.status_code == 200 and answer.json()["created"] == 2
    assert [r["index"] for r in answer.json()["rejected"]] == [1, 2, 3]
    assert bad_option.status_code == 422
