"""The projection store's writes belong to the caller's transaction, on PostgreSQL too, where the hot
statements go to asyncpg directly: a batch that fails leaves nothing behind (the rebuild's batches
begin with such a statement)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from common.db import create_engine, session_factory
from common.migrations import upgrade_async
from reporting.adapters.writers import projection_writer
from reporting.projections.apply import apply_changes
from reporting.projections.changes import decode_change
from sqlalchemy import text
from support import SERVICE_DIR, agreement_message, event_data, event_message, organization_message


async def test_a_failed_batch_writes_nothing_and_a_retry_counts_once(make_database) -> None:
    url = await make_database("rep_store_tx")
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    sessions = session_factory(engine)
    change = decode_change(event_message(event_data(participants=70, start_date="2024-03-01")))
    assert change is not None
    try:
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                result = await apply_changes(
                    projection_writer(session), 1, [change]
                )  # its first statement: straight to asyncpg
                assert result.applied == 1
                raise RuntimeError("the batch fails after the writes")
        async with engine.connect() as connection:
            for table in ("rm_event_facts", "rm_metrics", "rm_country_refs", "rm_bodies"):
                assert await connection.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table

        async with sessions() as session, session.begin():
            assert (await apply_changes(projection_writer(session), 1, [change])).applied == 1
        async with engine.connect() as connection:
            participants = await connection.scalar(
                text(
                    "SELECT value FROM rm_metrics WHERE gen = 1 AND region = 'cn:440000' AND year = 2024 "
                    "AND metric = 'events.participants'"
                )
            )
        assert participants == 70
    finally:
        await engine.dispose()


async def _participants(engine, region: str = "cn:440000") -> int | None:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return await connection.scalar(  # type: ignore[no-any-return]
            text(
                "SELECT value FROM rm_metrics WHERE gen = 1 AND region = :r AND year = 2024 "
                "AND metric = 'events.participants'"
            ),
            {"r": region},
        )


@pytest.mark.parametrize("first_stored", [False, True], ids=["new-event", "stored-event"])
async def test_two_consumers_applying_one_event_at_once_never_count_it_twice(make_database, first_stored) -> None:
    """Two owners of a partition for a moment (a rebalance) apply two versions of one event at once:
    the second waits for the first, then fails (and is retried) instead of subtracting a stale version."""
    url = await make_database(f"rep_store_race_{int(first_stored)}")
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    sessions = session_factory(engine)
    v1 = event_data(participants=10, start_date="2024-03-01")
    v2, v3 = ({**v1, "version": n, "participants": 10 * n} for n in (2, 3))
    c1, c2, c3 = (decode_change(event_message(v)) for v in (v1, v2, v3))
    try:
        if first_stored:
            async with sessions() as session, session.begin():
                await apply_changes(projection_writer(session), 1, [c1])  # type: ignore[list-item]
        async with sessions() as first, first.begin():
            await apply_changes(projection_writer(first), 1, [c2])  # type: ignore[list-item]

            async def second() -> None:
                async with sessions() as session, session.begin():
                    await apply_changes(projection_writer(session), 1, [c3])  # type: ignore[list-item]

            racing = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            assert not racing.done()  # waiting on the first transaction's row
        with pytest.raises(Exception, match=r"duplicate key|changed by another consumer"):
            await racing
        assert await _participants(engine) == 20  # v2 alone, counted once

        async with sessions() as session, session.begin():  # the retry re-reads v2 and replaces it
            assert (await apply_changes(projection_writer(session), 1, [c3])).applied == 1  # type: ignore[list-item]
        assert await _participants(engine) == 30
    finally:
        await engine.dispose()


async def test_an_organization_and_an_agreement_applied_at_once_still_link(make_database) -> None:
    """Two consumers (`--workers 2`) may apply an agreement and its organization in overlapping
    transactions. The second waits for the first to commit, then sees its rows: the agreement counts
    in the organization's regions exactly as when the two arrive one after the other."""
    url = await make_database("rep_partner_race")
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    sessions = session_factory(engine)
    org, other = str(uuid.uuid4()), str(uuid.uuid4())
    agreement = decode_change(agreement_message(str(uuid.uuid4()), [org, other]))
    registered = decode_change(organization_message(org, "DE"))
    assert agreement is not None and registered is not None

    async def regions(gen: int) -> set[str]:
        async with engine.connect() as connection:
            rows = await connection.scalars(text("SELECT region FROM rm_agreement_regions WHERE gen = :g"), {"g": gen})
            return set(rows)

    try:
        for change in (agreement, registered):  # one after the other, in generation 2: the expected rows
            async with sessions() as session, session.begin():
                await apply_changes(projection_writer(session), 2, [change])

        async def apply_organization() -> None:
            async with sessions() as session, session.begin():
                await apply_changes(projection_writer(session), 1, [registered])

        async with sessions() as session, session.begin():
            await apply_changes(projection_writer(session), 1, [agreement])
            overlapping = asyncio.create_task(apply_organization())
            await asyncio.sleep(0.5)
            assert not overlapping.done()  # it waits for this batch to commit
        await overlapping
        expected = await regions(2)
        assert expected - {"all", "cn:110000"}  # the organization's country added regions
        assert await regions(1) == expected
    finally:
        await engine.dispose()
