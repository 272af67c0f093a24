"""The rate limit per token subject (common.ratelimit) and the CORS origin, through the common app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from common.auth import CurrentPrincipal, mint_token
from common.ratelimit import RateLimit
from common.settings import ServiceSettings
from common.testing.plugin import TEST_SECRET
from common.web import create_service_app
from fastapi import FastAPI
from pydantic import ValidationError


def build_app(**settings: object) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    config = ServiceSettings(service_name="ratetest", jwt_secret=TEST_SECRET, environment="test", **settings)
    app = create_service_app(settings=config, title="t", description="t", lifespan=lifespan)

    @app.get("/things")
    async def things(principal: CurrentPrincipal) -> dict[str, str]:
        return {"by": principal.sub}

    return app


def bearer(sub: str, ttl: int = 3600) -> dict[str, str]:
    token = mint_token(
        secret=TEST_SECRET, org_kind="province", org_code="440000", scopes="events:write", sub=sub, ttl=ttl
    )
    return {"Authorization": f"Bearer {token}"}


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_subject_over_its_limit_gets_429_with_retry_after_and_others_go_on():
    async with client(build_app(rate_limit_per_minute=3)) as c:
        # two tokens of the same subject share one bucket
        first, second = bearer("client-a"), bearer("client-a", ttl=7200)
        assert first != second
        answers = [await c.get("/things", headers=first if i % 2 else second) for i in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        refused = await c.get("/things", headers=first)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["status"] == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        assert refused.headers["x-content-type-options"] == "nosniff"  # inside the security headers
        assert (await c.get("/things", headers=bearer("client-b"))).status_code == 200
        assert (await c.get("/healthz")).status_code == 200  # no token: not limited here


async def test_the_operations_endpoints_are_never_limited_even_with_a_token():
    # A probe or a scraper that sends a token must not be refused (nor take from the subject's bucket):
    # an orchestrator that sees 429 on /readyz takes the replica out of rotation.
    async with client(build_app(rate_limit_per_minute=2)) as c:
        token = bearer("prober")
        statuses = [(await c.get(path, headers=token)).status_code for path in ("/healthz", "/metrics") * 3]
        assert statuses == [200] * 6
        assert [(await c.get("/things", headers=token)).status_code for _ in range(3)] == [200, 200, 429]
        assert (await c.get("/readyz", headers=token)).status_code == 200


async def test_unverifiable_tokens_count_against_the_client_address():
    async with client(build_app(rate_limit_per_minute=2)) as c:
        forged = [{"Authorization": f"Bearer not.a.token{i}"} for i in range(3)]
        statuses = [(await c.get("/things", headers=h)).status_code for h in forged]
        assert statuses == [401, 401, 429]


def test_the_bucket_refills_at_the_rate():
    now = [0.0]
    limiter = RateLimit(lambda *_: None, per_minute=60, auth=lambda: None, clock=lambda: now[0])  # type: ignore[arg-type]
    assert all(limiter._take("k") == 0 for _ in range(60))
    assert limiter._take("k") == 1
    now[0] += 1.0
    assert limiter._take("k") == 0
    assert limiter._take("k") == 1


async def test_off_by_default_installs_nothing():
    app = build_app()
    assert not any(m.cls is RateLimit for m in app.user_middleware)
    async with client(app) as c:
        statuses = {(await c.get("/things", headers=bearer("busy"))).status_code for _ in range(50)}
    assert statuses == {200}


async def test_cors_answers_only_the_dashboard_origin():
    origin = "https://dashboard.example.org"
    async with client(build_app(dashboard_origin=origin)) as c:
        preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
        allowed = await c.options("/things", headers={"Origin": origin, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        other = await c.options("/things", headers={"Origin": "https://evil.example", **preflight})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        simple = await c.get("/things", headers={"Origin": "https://evil.example", **bearer("x")})
        assert "access-control-allow-origin" not in simple.headers
    async with client(build_app()) as c:  # unset: no cross-origin call at all
        answer = await c.get("/things", headers={"Origin": origin, **bearer("x")})
        assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    "value", ["*", "https://*.example.org", "https://a.example/path", "a.example", "https://a,https://b"]
)
def test_the_dashboard_origin_is_one_origin_never_a_wildcard(value):
    with pytest.raises(ValidationError):
        ServiceSettings(environment="test", dashboard_origin=value)
