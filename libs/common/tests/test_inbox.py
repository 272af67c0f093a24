"""The inbox on PostgreSQL and SQLite: ids seen before are duplicates; two claims of one id race safely."""

from __future__ import annotations

import asyncio

import pytest
from common.db import session_factory
from common.inbox import claim_new
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .conftest import inbox


async def _claim(engine: AsyncEngine, ids: list[str]) -> set[str]:
    async with session_factory(engine)() as session, session.begin():
        return await claim_new(session, inbox, dict.fromkeys(ids, "topic-a"))


async def test_claim_returns_only_ids_not_seen_before(engine: AsyncEngine) -> None:
    assert await _claim(engine, ["a", "b"]) == {"a", "b"}
    assert await _claim(engine, ["b", "c", "a", "d"]) == {"c", "d"}
    assert await _claim(engine, ["a", "b", "c", "d"]) == set()
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(inbox)) == 4


async def test_a_rolled_back_claim_leaves_the_ids_new(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            assert await claim_new(session, inbox, {"x": "topic-a"}) == {"x"}
            raise RuntimeError("the apply failed")
    assert await _claim(engine, ["x"]) == {"x"}


async def test_two_concurrent_claims_of_one_id_never_both_succeed(make_database) -> None:
    """Two owners of a partition for a moment (a rebalance): the second claim waits for the first
    transaction, and then treats the id the first one committed as a duplicate, without failing."""
    from .conftest import fresh_engine

    engine = await fresh_engine(await make_database("common_inbox_race"))
    sessions = session_factory(engine)
    try:
        async with sessions() as first, first.begin():
            assert await claim_new(first, inbox, {"m1": "topic-a"}) == {"m1"}

            async def second_claim() -> set[str]:
                async with sessions() as second, second.begin():
                    return await claim_new(second, inbox, {"m1": "topic-a", "m2": "topic-a"})

            racing = asyncio.create_task(second_claim())
            await asyncio.sleep(0.3)
            assert not racing.done()  # waiting on the first transaction's row
        assert await racing == {"m2"}
        assert await _claim(engine, ["m1", "m2", "m3"]) == {"m3"}
    finally:
        await engine.dispose()
