"""Dependencies going away under a served app (the common factory, real uvicorn, one keep-alive client):
a stopped database makes every route that needs it answer 503 problem+json with Retry-After, never 500,
and /readyz 503; a stopped broker leaves the service ready, its state reported in /readyz and /metrics;
/healthz and /metrics answer throughout. The database and the broker are this session's own
(`restartable_postgres`, `restartable_broker`): the shared ones are never stopped."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from common.db import create_engine, session_factory
from common.settings import ServiceSettings
from common.testing.live import LiveServer
from common.testing.plugin import TEST_SECRET
from common.testing.postgres import RestartablePostgres
from common.web import create_service_app, database_check, kafka_check
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text


def build_app(database_url: str, bootstrap: str) -> FastAPI:
    asyncpg_url = database_url.replace("postgresql+asyncpg://", "postgresql://")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url, pool_size=2, max_overflow=0)
        app.state.sessions = session_factory(engine)
        app.state.readiness_checks = {
            "database": database_check(engine),
            "kafka": kafka_check(bootstrap, "outage"),
        }
        try:
            yield
        finally:
            await engine.dispose()

    async def direct(_request: Request) -> Response:
        connection = await asyncpg.connect(asyncpg_url)  # a raw driver path, as the hot paths have
        try:
            return JSONResponse({"one": await connection.fetchval("SELECT 1")})
        finally:
            await connection.close()

    settings = ServiceSettings(service_name="outage", jwt_secret=TEST_SECRET)
    app = create_service_app(
        settings=settings, title="t", description="t", lifespan=lifespan, direct_routes={("POST", "/direct"): direct}
    )
    router = APIRouter()  # included, as the services include theirs
    router.add_api_route("/direct", direct, methods=["POST"])
    app.include_router(router)

    @app.get("/orm")
    async def orm(request: Request) -> dict[str, Any]:
        async with request.app.state.sessions() as session:
            return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("a bug")

    @app.post("/orm/write")
    async def orm_write(request: Request) -> dict[str, Any]:
        async with request.app.state.sessions() as session, session.begin():
            await session.execute(text("CREATE TEMP TABLE IF NOT EXISTS t (x int)"))
        return {"written": True}

    return app


DATABASE_ROUTES = [("GET", "/orm"), ("POST", "/orm/write"), ("POST", "/direct")]


@pytest.fixture(scope="module")
async def served(
    restartable_postgres: RestartablePostgres, restartable_broker: Any
) -> AsyncIterator[tuple[LiveServer, RestartablePostgres, Any]]:
    url = await restartable_postgres.create_database(f"outage_{uuid.uuid4().hex[:8]}")
    with LiveServer(build_app(url, restartable_broker.bootstrap), "outage-server") as server:
        yield server, restartable_postgres, restartable_broker


@pytest.fixture
def client(served: tuple[LiveServer, Any, Any]) -> Iterator[httpx.Client]:
    """One connection for the whole test: a dropped keep-alive connection shows as a new one."""
    with httpx.Client(base_url=served[0].url, timeout=30, limits=httpx.Limits(max_connections=1)) as c:
        yield c


def local_address(response: httpx.Response) -> Any:
    """The client's end of the connection that carried the response: a new one means the old was closed."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def assert_unavailable(response: httpx.Response, what: str) -> dict[str, Any]:
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    assert int(response.headers["retry-after"]) >= 1, what
    body: dict[str, Any] = response.json()
    assert body["status"] == 503 and body["title"] == "Service unavailable", what
    return body


def metric(metrics: str, name: str) -> float:
    match = re.search(rf'^{name}\{{service="outage"\}} ([0-9.e+]+)$', metrics, flags=re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_database_outage_is_503_on_every_route_and_keeps_the_connection(served, client: httpx.Client) -> None:
    _server, postgres, _broker = served
    for method, path in DATABASE_ROUTES:
        assert client.request(method, path).status_code == 200, path
    ports = set()
    postgres.stop("immediate")
    try:
        for _round in range(3):  # a connection the pool held before the outage, then fresh attempts
            for method, path in DATABASE_ROUTES:
                response = client.request(method, path)
                assert_unavailable(response, f"{method} {path}")
                ports.add(local_address(response))
        ready = client.get("/readyz")
        body = assert_unavailable(ready, "/readyz")
        assert body["checks"]["database"]["ok"] is False
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        ports.add(local_address(client.get("/healthz")))
        assert len(ports) == 1, f"the server closed the keep-alive connection: {len(ports)} connections used"
    finally:
        postgres.start()
    for method, path in DATABASE_ROUTES:  # the pool replaces its dead connections by itself
        assert client.request(method, path).status_code == 200, path
    assert client.get("/readyz").status_code == 200


def test_broker_outage_leaves_the_service_ready_and_says_so(served, client: httpx.Client) -> None:
    _server, _postgres, broker = served
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["kafka"]["ok"] is True
    assert metric(client.get("/metrics").text, "kafka_broker_reachable") == 1
    broker.stop()
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["kafka"] == {"ok": False, "required": False, "detail": "kafka unreachable"}
        assert ready.json()["checks"]["database"]["ok"] is True
        assert metric(client.get("/metrics").text, "kafka_broker_reachable") == 0
        assert client.get("/orm").status_code == 200
    finally:
        broker.start()
    client.get("/readyz")
    assert metric(client.get("/metrics").text, "kafka_broker_reachable") == 1


def test_a_direct_route_is_counted_under_its_path(served, client: httpx.Client) -> None:
    client.post("/direct")
    metrics = client.get("/metrics").text
    assert re.search(r'^http_requests_total\{[^}]*route="/direct"', metrics, flags=re.MULTILINE), metrics


def test_an_unexpected_error_is_a_500_problem_that_keeps_the_connection(served, client: httpx.Client) -> None:
    first = client.get("/boom")
    assert first.status_code == 500 and first.headers["content-type"].startswith("application/problem+json")
    assert "a bug" not in first.text
    second = client.get("/healthz")
    assert second.status_code == 200
    assert local_address(first) == local_address(second), "the server closed the connection after the 500"
