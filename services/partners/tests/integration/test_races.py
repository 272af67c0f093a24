"""Two registrations of one organization racing on PostgreSQL: the unique index lets one through and the
other answers 409 naming it — or, when the winner is merged away before the loser looks for it, the loser
registers after all. Never a 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from partners.adapters.store import _organization_row
from partners.adapters.tables import organizations
from partners.domain.base import Body
from partners.domain.organization import Organization
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..conftest import organization


@pytest.fixture
async def engine(service) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service.settings.database_url)
    yield engine
    await engine.dispose()


async def _waiting_on_a_lock(engine: AsyncEngine, query_start: str, timeout: float = 20.0) -> int:
    """The backend pid whose statement starting with `query_start` waits on a lock."""
    deadline = time.monotonic() + timeout
    async with engine.connect() as probe:
        while time.monotonic() < deadline:
            pid = await probe.scalar(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE :q"
                ),
                {"q": f"{query_start}%"},
            )
            await probe.rollback()
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.02)
    raise AssertionError(f"no statement {query_start!r} came to wait on a lock")


async def test_two_concurrent_registrations_one_201_one_409_naming_it(service, headers):
    body = organization(name="Racing Academy of Sciences", name_zh=None, country="DE")
    answers = await asyncio.gather(
        *(service.client.post("/v1/partners/organizations", json=body, headers=headers()) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    created = next(a for a in answers if a.status_code == 201).json()
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["existing_id"] == created["id"]


async def test_a_winner_merged_away_before_the_loser_looks_again_is_no_500(service, headers, engine):
    """The loser's insert waits on the winner's uncommitted row in the unique index; an admin's merge
    (here: a table lock taken behind the loser) marks the winner merged before the loser can look for it."""
    body = organization(name="Vanishing Academy", name_zh=None, country="FR")
    winner = Organization.register(id=str(uuid.uuid4()), by=Body("hq", "HQ"), **body)
    async with engine.connect() as holder:
        await holder.execute(organizations.insert().values(_organization_row(winner)))
        loser = asyncio.create_task(service.client.post("/v1/partners/organizations", json=body, headers=headers()))
        await _waiting_on_a_lock(engine, "INSERT INTO organizations")

        async def merge_the_winner(connection: AsyncConnection) -> None:
            await connection.execute(text("LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE"))
            await connection.execute(
                update(organizations)
                .where(organizations.c.id == uuid.UUID(winner.id))
                .values(status="merged", merged_into=uuid.uuid4(), version=2)
            )
            await connection.commit()

        async with engine.connect() as merger:
            merging = asyncio.create_task(merge_the_winner(merger))
            await _waiting_on_a_lock(engine, "LOCK TABLE organizations")
            await holder.commit()  # the loser's insert fails on the index; its next look waits behind the merge
            await merging
            answer = await loser
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "Vanishing Academy" and answer.json()["id"] != winner.id
