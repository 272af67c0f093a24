"""The database stopped under a served app (the session's own PostgreSQL, never the shared one): what every
service promises then, checked the same way for each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

from common.testing.postgres import RestartablePostgres

Route = tuple[str, str]
READINESS: Route = ("GET", "/readyz")


def local_address(response: httpx.Response) -> Any:
    """The client side of the connection the response came on."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def assert_unavailable(response: httpx.Response, route: Route) -> None:
    assert response.status_code == 503, (route, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), route
    assert int(response.headers["retry-after"]) >= 1, route
    assert response.json()["status"] == 503, route


async def check_answers_while_down(
    client: httpx.AsyncClient,
    postgres: RestartablePostgres,
    database_routes: Iterable[Route],
    send: Callable[[Route], Awaitable[httpx.Response]],
    no_database: Iterable[Route],
    *,
    connections: set[Any],
    while_down: Callable[[], None] = lambda: None,
) -> None:
    """Stops the database: every route that needs it answers 503 problem+json with Retry-After (twice round:
    the pooled connections die first, then connecting is refused), /readyz 503, the others 200, all on the
    one keep-alive connection (`connections` holds those used before); then starts it and /readyz is 200."""
    postgres.stop("immediate")
    try:
        for _round in range(2):
            for route in database_routes:
                response = await send(route)
                assert_unavailable(response, route)
                connections.add(local_address(response))
        while_down()
        assert_unavailable(await client.get("/readyz"), READINESS)
        for method, path in no_database:
            answer = await client.request(method, path)
            assert answer.status_code == 200, (path, answer.status_code)
            connections.add(local_address(answer))
    finally:
        postgres.start()
    assert len(connections) == 1, f"the server closed the keep-alive connection ({len(connections)} used)"
    assert (await client.get("/readyz")).status_code == 200
