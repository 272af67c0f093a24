"""`/v1/targets` and `/v1/bodies` read with two statements each; a rebuild's swap committed between them
(forced here, deterministically, right after the first) must not mix generations: the answer is the one
read before the swap. PostgreSQL only: on SQLite a read session is one BEGIN IMMEDIATE transaction
(common/db.py), which a swap cannot commit inside of."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from common.db import create_engine
from reporting.adapters.tables import generation
from reporting.rebuild.replay import PROJECTION_TABLES
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from support import (
    EVENTS,
    PARTNERS,
    agreement_message,
    event_data,
    event_message,
    organization_message,
    prepare,
    running_service,
)


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token) -> AsyncIterator[Any]:
    settings = await prepare(make_database, "rep_snapshot", kafka_bootstrap, f"{topic_prefix}snap.", jwt_secret)
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


async def _swap_to_an_empty_generation(url: str) -> None:
    """What a rebuild's swap does (without --keep-previous), with nothing replayed: flip, drop the old rows."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            row = (await connection.execute(select(generation.c.current, generation.c.next).with_for_update())).one()
            await connection.execute(update(generation).values(current=row.next, next=row.next + 1))
            for table in PROJECTION_TABLES:
                await connection.execute(delete(table).where(table.c.gen == row.current))
    finally:
        await engine.dispose()


async def _feed(service: Any) -> None:
    orgs = [str(uuid.uuid4()) for _ in range(3)]
    base = service.seen()
    await service.producer.send(
        PARTNERS,
        *[organization_message(o, "DE") for o in orgs],
        agreement_message(str(uuid.uuid4()), orgs, signer=("province", "440000")),
    )
    await service.producer.send(
        EVENTS, *[event_message(event_data(organizer=("province", "440000"))) for _ in range(5)]
    )
    await service.settle(base + 9)


def _swap_after_the_first_read(monkeypatch: pytest.MonkeyPatch, url: str, marker: str) -> list[str]:
    """Right after the read session's statement containing `marker` returns, swap generations."""
    swapped: list[str] = []
    real_execute = AsyncSession.execute

    async def execute(self: AsyncSession, statement: Any, *args: Any, **kwargs: Any) -> Any:
        result = await real_execute(self, statement, *args, **kwargs)
        if not swapped and marker in str(statement):
            swapped.append(marker)
            await _swap_to_an_empty_generation(url)
        return result

    monkeypatch.setattr(AsyncSession, "execute", execute)
    return swapped


async def test_targets_read_one_generation_across_a_swap(service, monkeypatch):
    await _feed(service)
    async with service.client() as client:
        before = (await client.get("/v1/targets")).json()["targets"]
        assert {t["key"]: t["value"] for t in before}["partners"] == 3
        swapped = _swap_after_the_first_read(monkeypatch, service.settings.database_url, "SELECT 'm', region")
        during = (await client.get("/v1/targets")).json()["targets"]
        monkeypatch.undo()
        after = (await client.get("/v1/targets")).json()["targets"]
    assert swapped
    assert during == before  # not the new generation's 0 partners beside the old one's agreements
    assert {t["key"]: t["value"] for t in after}["partners"] == 0


async def test_bodies_read_one_generation_across_a_swap(service, monkeypatch):
    await _feed(service)
    async with service.client() as client:
        before = (await client.get("/v1/bodies", params={"year": 2025})).json()["items"]
        guangdong = next(b for b in before if b["code"] == "440000")
        assert guangdong["events"] > 0 and guangdong["last_change"] is not None
        swapped = _swap_after_the_first_read(monkeypatch, service.settings.database_url, "FROM rm_bodies")
        during = (await client.get("/v1/bodies", params={"year": 2025})).json()["items"]
        monkeypatch.undo()
        after = (await client.get("/v1/bodies", params={"year": 2025})).json()["items"]
    assert swapped
    assert during == before  # not the old generation's bodies with the new generation's counts
    assert next(b for b in after if b["code"] == "440000")["events"] == 0
