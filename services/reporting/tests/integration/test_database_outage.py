"""The database stopped under reporting (this session's own PostgreSQL, never the shared one): every route
that needs it answers 503 problem+json with Retry-After — never 500 — on the same keep-alive connection,
/readyz is 503, /healthz and /metrics answer, and all of it works again after the restart. The stream's
publisher backs off while the database is away and says so in a few lines, not a traceback per retry."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import httpx
import pytest
from common.db import session_factory
from common.testing.outage import READINESS, check_answers_while_down
from common.testing.postgres import RestartablePostgres
from reporting.entrypoints.app import create_read_engine
from reporting.stream.broadcaster import MetricsBroadcaster
from support import prepare, running_service

NO_DATABASE = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/regions"), ("POST", "/v1/dashboard/session")}
# Each route with what it needs to reach the database (the stream: a resume point too old for the
# buffer, so it answers with a snapshot read from the database).
DATABASE_ROUTES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/v1/metrics"): {},
    ("GET", "/v1/metrics/regions/{code}"): {"url": "/v1/metrics/regions/all"},
    ("GET", "/v1/metrics/regions/{code}/trend"): {"url": "/v1/metrics/regions/all/trend"},
    ("GET", "/v1/targets"): {},
    ("GET", "/v1/bodies"): {},
    ("GET", "/v1/reports/annual"): {"params": {"format": "csv"}},
    ("GET", "/v1/metrics/stream"): {"params": {"last_event_id": "1"}},
}


@pytest.fixture(scope="module")
async def outage_service(restartable_postgres: RestartablePostgres, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        restartable_postgres.create_database,
        f"rep_outage_{uuid.uuid4().hex[:6]}",
        kafka_bootstrap,
        f"{topic_prefix}outage.",
        jwt_secret,
    )
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


async def send(client: httpx.AsyncClient, route: tuple[str, str]) -> httpx.Response:
    method, path = route
    arguments = dict(DATABASE_ROUTES[route])
    if route == ("GET", "/v1/metrics/stream"):  # read the head only: the body is endless once it is served
        async with client.stream(method, arguments.pop("url", path), **arguments) as response:
            if response.status_code != 200:
                await response.aread()
            return response
    return await client.request(method, arguments.pop("url", path), **arguments)


async def test_every_database_route_is_503_while_the_database_is_down(outage_service, restartable_postgres) -> None:
    paths = outage_service.app.openapi()["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert documented == {*DATABASE_ROUTES, *NO_DATABASE, READINESS}, "place new routes above"
    streaming = ("GET", "/v1/metrics/stream")
    async with outage_service.client(timeout=30, limits=httpx.Limits(max_connections=1)) as client:
        for route in DATABASE_ROUTES.keys() - {streaming}:
            assert (await send(client, route)).status_code == 200, route

        def no_subscription_left() -> None:
            assert outage_service.app.state.broadcaster.subscribers == 0, "failed subscriptions were left behind"

        await check_answers_while_down(
            client,
            restartable_postgres,
            DATABASE_ROUTES,
            lambda route: send(client, route),
            NO_DATABASE,
            connections=set(),
            while_down=no_subscription_left,
        )
        for route in DATABASE_ROUTES:
            response = await send(client, route)
            assert response.status_code == 200, (route, response.status_code)


async def test_the_stream_publisher_backs_off_and_logs_a_few_lines(
    outage_service, restartable_postgres, caplog
) -> None:
    engine = create_read_engine(outage_service.settings.database_url)
    broadcaster = MetricsBroadcaster(session_factory(engine), coalesce_ms=150)
    broadcaster.start()
    caplog.set_level(logging.INFO, logger="reporting.stream.broadcaster")
    try:
        broadcaster.notify_all()
        deadline = time.monotonic() + 10
        while broadcaster.published == 0:
            assert time.monotonic() < deadline, "nothing published with the database up"
            await asyncio.sleep(0.05)
        restartable_postgres.stop("immediate")
        try:
            outage_ends = time.monotonic() + 5
            while time.monotonic() < outage_ends:  # changes keep coming, as from the consumers
                broadcaster.notify_all()
                await asyncio.sleep(0.1)
        finally:
            restartable_postgres.start()
        published = broadcaster.published
        deadline = time.monotonic() + 15  # at most one capped delay, then the retry succeeds
        while broadcaster.published == published:
            assert time.monotonic() < deadline, "the publisher did not resume after the database came back"
            broadcaster.notify_all()
            await asyncio.sleep(0.1)
    finally:
        await broadcaster.stop()
        await engine.dispose()
    records = [r for r in caplog.records if r.name == "reporting.stream.broadcaster"]
    assert not [r for r in records if r.exc_info], "a traceback per failed publish"
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    assert any("resumed" in r.getMessage() for r in records), [r.getMessage() for r in records]
    assert broadcaster.publish_failures <= 8, f"{broadcaster.publish_failures} attempts in 5 s: no backoff"
