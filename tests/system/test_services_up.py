"""All four services start on migrated PostgreSQL with the real broker and answer the operations
endpoints; /readyz turns 503 (problem+json) when the database is unreachable, and reports an unreachable
broker while staying 200 (writes go on into the outbox)."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from common.migrations import upgrade_async

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["partners", "events", "talent", "reporting"]


def settings_for(service: str, **overrides):
    module = importlib.import_module(f"{service}.config")
    cls = next(v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings")
    return cls(**overrides)


def app_for(service: str, settings):
    return importlib.import_module(f"{service}.entrypoints.app").create_app(settings)


@pytest.mark.parametrize("service", SERVICES)
async def test_service_starts_migrated_and_ready(service, make_database, kafka_bootstrap, topic_prefix, jwt_secret):
    url = await make_database(f"up_{service}")
    await upgrade_async(url, ROOT / "services" / service)
    settings = settings_for(
        service,
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwt_secret=jwt_secret,
        environment="test",
    )
    app = app_for(service, settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert "http_requests_total" in (await client.get("/metrics")).text
            assert (await client.get("/openapi.json")).json()["info"]["title"]


@pytest.mark.parametrize("service", ["partners", "events"])
async def test_readyz_reports_an_unreachable_broker_and_stays_ready(service, make_database, topic_prefix, jwt_secret):
    url = await make_database(f"nokafka_{service}")
    await upgrade_async(url, ROOT / "services" / service)
    settings = settings_for(
        service,
        database_url=url,
        kafka_bootstrap_servers="127.0.0.1:1",
        topic_prefix=topic_prefix,
        jwt_secret=jwt_secret,
        environment="test",
    )
    app = app_for(service, settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["kafka"] == {"ok": False, "required": False, "detail": "kafka unreachable"}
    assert ready.json()["checks"]["database"]["ok"] is True


async def test_readyz_is_503_when_the_database_is_unreachable(kafka_bootstrap, topic_prefix, jwt_secret):
    settings = settings_for(
        "talent",
        database_url="postgresql+asyncpg://nobody:x@127.0.0.1:1/none",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwt_secret=jwt_secret,
        environment="test",
        relay_enabled=False,
    )
    app = app_for("talent", settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith("application/problem+json")
    assert ready.headers["retry-after"] == "1"
    assert ready.json()["checks"]["database"]["ok"] is False


@pytest.mark.parametrize("service", ["partners", "talent"])
async def test_readyz_follows_the_database_down_and_back(
    service, restartable_postgres, kafka_bootstrap, topic_prefix, jwt_secret
):
    """The skeletons' only database route is /readyz; /healthz and /metrics answer throughout."""
    url = await restartable_postgres.create_database(f"outage_{service}_{topic_prefix.strip('.')}")
    await upgrade_async(url, ROOT / "services" / service)
    settings = settings_for(
        service,
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwt_secret=jwt_secret,
        environment="test",
    )
    app = app_for(service, settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/readyz")).status_code == 200
            restartable_postgres.stop("immediate")
            try:
                ready = await client.get("/readyz")
                assert ready.status_code == 503, ready.text
                assert ready.headers["content-type"].startswith("application/problem+json")
                assert ready.headers["retry-after"] == "1"
                assert ready.json()["checks"]["database"]["ok"] is False
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/metrics")).status_code == 200
            finally:
                restartable_postgres.start()
            assert (await client.get("/readyz")).status_code == 200
