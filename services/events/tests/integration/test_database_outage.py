"""The database stopped under the served app (this session's own PostgreSQL, never the shared one): every
route that needs it answers 503 problem+json with Retry-After — never 500 — on the same keep-alive
connection, /readyz is 503, /healthz and /metrics answer; after the restart every route works again.
The routes come from the OpenAPI document, so a new route must be placed in one of the lists below."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from common.auth import mint_token
from common.testing.outage import READINESS, check_answers_while_down, local_address
from common.testing.plugin import TEST_SECRET
from common.testing.postgres import RestartablePostgres

from ..conftest import EVENTS, EventsLiveServer, body, migrated_database

PROVINCE = ("province", "440000", "events:write")
NO_DATABASE = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/asyncapi.json")}
Request = Callable[[dict[str, Any]], dict[str, Any]]  # the event's state → httpx.request keyword arguments
ADMIN = {"Authorization": "Bearer " + mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes=["admin"])}

# What each route needs to get past validation to the database, and what it answers once it is back.
DATABASE_ROUTES: dict[tuple[str, str], tuple[Request, int]] = {
    ("POST", "/v1/events"): (lambda _e: {"json": body()}, 201),
    ("POST", "/v1/events/batch"): (lambda _e: {"json": {"events": [body(), body()]}}, 200),
    ("GET", "/v1/events"): (lambda _e: {"params": {"limit": 5}}, 200),
    ("GET", "/v1/events/{event_id}"): (lambda e: {"url": f"/v1/events/{e['id']}"}, 200),
    (
        "PATCH",
        "/v1/events/{event_id}",
    ): (
        lambda e: {
            "url": f"/v1/events/{e['id']}",
            "json": {"participants": 321},
            "headers": {"If-Match": f'"{e["version"]}"'},
        },
        200,
    ),
    ("DELETE", "/v1/events/{event_id}"): (
        lambda e: {"url": f"/v1/events/{e['id']}", "headers": {"If-Match": f'"{e["version"]}"'}},
        200,
    ),
    ("GET", "/v1/events/audit"): (
        lambda e: {"params": {"entity": "event", "entity_id": e["id"]}, "headers": ADMIN},
        200,
    ),
}


@pytest.fixture(scope="module")
async def outage_server(
    restartable_postgres: RestartablePostgres, settings_factory: Any
) -> AsyncIterator[EventsLiveServer]:
    url = await migrated_database(
        lambda name: restartable_postgres.create_database(name), f"ev_outage_{uuid.uuid4().hex[:6]}"
    )
    with EVENTS.live_server(settings_factory(url, "outage")) as server:
        yield server


def operations(server: EventsLiveServer) -> set[tuple[str, str]]:
    paths = server.server.config.app.openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


async def send(client: httpx.AsyncClient, route: tuple[str, str], event: dict[str, Any]) -> httpx.Response:
    method, path = route
    arguments = DATABASE_ROUTES[route][0](event)
    return await client.request(method, arguments.pop("url", path), **arguments)


async def test_every_database_route_is_503_while_the_database_is_down(
    outage_server: EventsLiveServer, restartable_postgres: RestartablePostgres, token: Any
) -> None:
    assert operations(outage_server) == {*DATABASE_ROUTES, *NO_DATABASE, READINESS}, "place new routes above"
    headers = {"Authorization": token(*PROVINCE)}
    async with httpx.AsyncClient(
        base_url=outage_server.url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=1)
    ) as client:
        created = await client.post("/v1/events", json=body())
        assert created.status_code == 201, created.text
        event = created.json()
        await check_answers_while_down(
            client,
            restartable_postgres,
            DATABASE_ROUTES,
            lambda route: send(client, route, event),
            NO_DATABASE,
            connections={local_address(created)},
        )
        for route, (_request, status) in DATABASE_ROUTES.items():
            response = await send(client, route, event)
            assert response.status_code == status, (route, response.status_code, response.text[:300])
            if route[0] == "PATCH":
                event = response.json()
        metrics = (await client.get("/metrics")).text
        assert 'route="/v1/events",service="events",status="503"' in metrics
        assert 'route="unmatched",service="events",status="503"' not in metrics
