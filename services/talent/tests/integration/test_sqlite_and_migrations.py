"""The migrations go up and down on PostgreSQL and SQLite, and the service works on SQLite too (sync,
erasure, reads, the relay to the real broker)."""

from __future__ import annotations

from typing import Any

from common.testing.service import check_up_down_up
from talent.domain.model import PERSONAL_FIELDS

from ..conftest import SERVICE_DIR, record, running_service

TABLES = {"persons", "person_posts", "audit_log"}


async def _up_and_down(url: str) -> None:
    await check_up_down_up(url, SERVICE_DIR, TABLES, down_to="0003")


async def test_migrations_up_and_down_on_postgresql(make_database: Any) -> None:
    await _up_and_down(await make_database("talent_migrations"))


async def test_migrations_and_the_service_on_sqlite(tmp_path, settings_factory, kafka_bootstrap, token) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/talent.db"
    await _up_and_down(url)
    headers = {"Authorization": token("society", "CMES", "talent:sync")}
    reader = {"Authorization": token("province", "440000", "reporting:read")}
    async for service in running_service(settings_factory(url, "sqlite"), kafka_bootstrap):
        records = [record(n) for n in range(50)]
        first = await service.client.post("/v1/talent/sync", json={"mode": "full", "records": records}, headers=headers)
        assert first.status_code == 200 and first.json()["created"] == 50, first.text
        again = await service.client.post("/v1/talent/sync", json={"mode": "full", "records": records}, headers=headers)
        assert again.json()["unchanged"] == 50
        records[1]["groups"] = ["youth"]
        third = await service.client.post(
            "/v1/talent/sync", json={"mode": "full", "records": records[:40]}, headers=headers
        )
        assert (third.json()["updated"], third.json()["removed"], third.json()["unchanged"]) == (1, 10, 39)
        page = (await service.client.get("/v1/talent/persons", params={"group": "youth"}, headers=reader)).json()
        assert len(page["items"]) == 1 and not set(PERSONAL_FIELDS) & set(page["items"][0])
        posts = (await service.client.get("/v1/talent/posts", params={"role": "vice_president"}, headers=reader)).json()
        assert len(posts["items"]) == 10  # records 0, 4, …, 36 hold one post each
        person = (
            await service.client.get("/v1/talent/persons", params={"has_post": "true", "limit": 1}, headers=headers)
        ).json()["items"][0]
        erased = await service.client.delete(f"/v1/talent/persons/{person['id']}", headers=headers)
        assert erased.status_code == 200 and erased.json()["deleted"]
        messages = await service.messages(expected=50 + 1 + 10 + 1)
        assert [m["value"]["type"] for m in messages].count("exchange.person.removed") == 11
