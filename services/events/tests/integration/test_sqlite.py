"""The migrations run on SQLite and the service works there too (relay to the real broker included)."""

from __future__ import annotations

import asyncio

from common.migrations import upgrade_async
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from ..conftest import SERVICE_DIR, body, running_service


async def test_migrations_and_the_app_on_sqlite(tmp_path, settings_factory, kafka_bootstrap, token):
    url = f"sqlite+aiosqlite:///{tmp_path}/events.db"
    await upgrade_async(url, SERVICE_DIR)
    await upgrade_async(url, SERVICE_DIR)  # idempotent: already at head
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert {"events", "outbox", "inbox", "alembic_version"} <= tables

    headers = {"Authorization": token("province", "310000", "events:write")}
    async for service in running_service(settings_factory(url, "sqlite"), kafka_bootstrap):
        ready = await service.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        sent = body(host_province="310000", countries=["JP", "KR"])
        created = await service.client.post("/v1/events", json=sent, headers=headers)
        assert created.status_code == 201, created.text
        state = created.json()
        again = await service.client.post("/v1/events", json=sent, headers=headers)
        assert again.status_code == 200 and again.json() == state
        same = await asyncio.gather(
            *[
                service.client.post("/v1/events", json=body(external_ref="x", host_province="310000"), headers=headers)
                for _ in range(4)
            ]
        )
        assert sorted(r.status_code for r in same) == [200, 200, 200, 201]

        batch = await service.client.post(
            "/v1/events/batch", json={"events": [body(host_province="310000") for _ in range(50)]}, headers=headers
        )
        assert batch.json()["created"] == 50
        listed = await service.client.get(
            "/v1/events", params={"country": "KR", "host_province": "310000"}, headers=headers
        )
        assert [e["id"] for e in listed.json()["items"]] == [state["id"]]
        read = await service.client.get(f"/v1/events/{state['id']}", headers=headers)
        assert read.json() == state
        changed = await service.client.patch(
            f"/v1/events/{state['id']}", json={"papers": 1}, headers={**headers, "If-Match": '"1"'}
        )
        assert changed.status_code == 200 and changed.json()["version"] == 2
        messages = await service.messages_for(state["id"], expected=2)
        assert [m["value"]["type"] for m in messages] == ["exchange.event.recorded", "exchange.event.updated"]
        assert messages[1]["value"]["data"] == changed.json()
