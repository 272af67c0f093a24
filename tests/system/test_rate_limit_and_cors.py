"""The rate limit per token subject, the dashboard's CORS origin and the caching headers on the four
services as real processes (each started through its CLI, as deployed), configured only through the
environment: `EXCHANGE_RATE_LIMIT_PER_MINUTE` and `EXCHANGE_DASHBOARD_ORIGIN`. The unit tests of
common.ratelimit and common.web show the mechanisms; this shows every service installs them."""

from __future__ import annotations

import httpx
import pytest
from common.auth import mint_token
from common.testing.plugin import TEST_SECRET
from harness import SERVICES, System

LIMIT = 3
DASHBOARD = "https://dashboard.example.org"
FOREIGN = "https://evil.example.com"
PROBE = {  # a read that an HQ admin token may make on each service
    "events": "/v1/events",
    "partners": "/v1/partners/organizations",
    "talent": "/v1/talent/persons",
    "reporting": "/v1/regions",
}
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}

pytestmark = pytest.mark.timeout(300)


def token_of(subject: str) -> dict[str, str]:
    token = mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes=["admin"], sub=subject)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def system(make_system) -> System:
    return await make_system(
        "ratecors", env={"EXCHANGE_RATE_LIMIT_PER_MINUTE": str(LIMIT), "EXCHANGE_DASHBOARD_ORIGIN": DASHBOARD}
    )


def assert_limited(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 429
    # 3 a minute refill one every 20 s: the wait is whole seconds, at least 1, at most one refill.
    assert 1 <= int(answer.headers["retry-after"]) <= 60 // LIMIT


async def test_every_service_limits_each_token_subject_and_never_its_probes(system: System) -> None:
    for service in SERVICES:
        path = PROBE[service]
        async with httpx.AsyncClient(base_url=system.url(service), timeout=30) as client:
            busy, other = token_of(f"busy-{service}"), token_of(f"other-{service}")
            statuses = [(await client.get(path, headers=busy)).status_code for _ in range(LIMIT)]
            assert statuses == [200] * LIMIT, service
            assert_limited(await client.get(path, headers=busy))
            # Any route of the service: the bucket is the subject's, not the path's.
            assert_limited(await client.get(f"{path}/00000000-0000-0000-0000-000000000000", headers=busy))
            assert (await client.get(path, headers=other)).status_code == 200, service
            # Probes and scrapes, with or without the spent token, more often than the limit.
            for headers in ({}, busy):
                for probe in ("/healthz", "/readyz", "/metrics") * 2:
                    answer = await client.get(probe, headers=headers)
                    assert answer.status_code == 200, (service, probe, answer.text)
            # The dashboard may read the 429 and its Retry-After from its own origin.
            refused = await client.get(path, headers={**busy, "Origin": DASHBOARD})
            assert_limited(refused)
            assert refused.headers["access-control-allow-origin"] == DASHBOARD
            assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
            # The OpenAPI document says so: the 429 can occur on every operation that takes a token.
            document = (await client.get("/openapi.json")).json()
            assert "Retry-After" in document["paths"][path]["get"]["responses"]["429"]["headers"], service


async def test_every_service_answers_cors_to_the_dashboard_origin_only(system: System) -> None:
    for service in SERVICES:
        path = PROBE[service]
        async with httpx.AsyncClient(base_url=system.url(service), timeout=30) as client:
            reader = token_of(f"cors-{service}")
            preflight = await client.options(path, headers={**PREFLIGHT, "Origin": DASHBOARD})
            assert preflight.status_code == 200, (service, preflight.text)
            assert preflight.headers["access-control-allow-origin"] == DASHBOARD
            assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
            simple = await client.get(path, headers={**reader, "Origin": DASHBOARD})
            assert simple.status_code == 200, (service, simple.text)
            assert simple.headers["access-control-allow-origin"] == DASHBOARD
            assert "origin" in simple.headers["vary"].lower()  # a shared cache keeps one answer per origin

            foreign_preflight = await client.options(path, headers={**PREFLIGHT, "Origin": FOREIGN})
            assert foreign_preflight.status_code == 400, service
            assert "access-control-allow-origin" not in foreign_preflight.headers
            foreign = await client.get(path, headers={**reader, "Origin": FOREIGN})
            assert foreign.status_code == 200  # answered, but the foreign page's script may not read it
            assert "access-control-allow-origin" not in foreign.headers, service


async def test_api_answers_are_never_stored_and_the_dashboard_files_may_be(system: System) -> None:
    for service in SERVICES:
        async with httpx.AsyncClient(base_url=system.url(service), timeout=30) as client:
            answer = await client.get(PROBE[service], headers=token_of(f"cache-{service}"))
            assert answer.status_code == 200
            assert answer.headers.get_list("cache-control") == ["no-store"], service
            # EXCHANGE_ENVIRONMENT=test: served over plain HTTP on this machine, so no HSTS.
            assert "strict-transport-security" not in answer.headers
    async with httpx.AsyncClient(base_url=system.url("reporting"), timeout=30) as client:
        for asset in ("/dashboard/", "/dashboard/app.js"):
            answer = await client.get(asset)
            assert answer.status_code == 200, asset
            assert "cache-control" not in answer.headers, asset
            assert "etag" in answer.headers or "last-modified" in answer.headers, asset
