"""Auth and problem+json through a real FastAPI app built with the common factory (no infrastructure)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from common.auth import CurrentPrincipal, mint_token, require_scope
from common.errors import Conflict
from common.settings import ServiceSettings
from common.testing.plugin import TEST_SECRET
from common.web import API_POLICY, create_service_app
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


class CharacterNotInRepertoireError(Exception):
    """Named like asyncpg's: what PostgreSQL answers to a NUL in text."""


def build_app(max_body_bytes: int = 1000) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(service_name="webtest", jwt_secret=TEST_SECRET, max_body_bytes=max_body_bytes)
    app = create_service_app(settings=settings, title="t", description="t", lifespan=lifespan)

    @app.post("/things", dependencies=[require_scope("events:write")])
    async def create(thing: Thing, principal: CurrentPrincipal) -> dict[str, str]:
        if thing.name == "taken":
            raise Conflict("A thing with this name exists.", existing_id="42")
        if thing.name == "boom":
            raise RuntimeError("secret internal detail")
        if thing.name == "nul":
            raise DBAPIError("INSERT ...", {}, CharacterNotInRepertoireError('invalid byte sequence for "UTF8": 0x00'))
        return {"by": principal.org_code}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(kind: str = "province", code: str = "440000", scopes: str = "events:write", ttl: int = 3600) -> dict:
    token = mint_token(secret=TEST_SECRET, org_kind=kind, org_code=code, scopes=scopes, ttl=ttl)
    return {"Authorization": f"Bearer {token}"}


GOOD = {"name": "a", "count": 1}


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer not-a-jwt"}, 401),
        (bearer(ttl=-10), 401),  # expired
        (
            {
                "Authorization": "Bearer "
                + mint_token(
                    secret="another-secret-of-enough-length-123456", org_kind="hq", org_code="HQ", scopes="admin"
                )
            },
            401,
        ),  # wrong signature
        (bearer(scopes="reporting:read"), 403),  # wrong scope
        (bearer(kind="society", code="CMES", scopes="talent:sync"), 403),
    ],
)
async def test_auth_failures_are_problems(client, headers, status):
    body = assert_problem(await client.post("/things", json=GOOD, headers=headers), status)
    if status == 401:
        assert "secret" not in body["detail"].lower() or "expired" in body["detail"].lower()


async def test_hq_admin_passes_any_scope_check(client):
    response = await client.post("/things", json=GOOD, headers=bearer(kind="hq", code="HQ", scopes="admin"))
    assert response.status_code == 200 and response.json() == {"by": "HQ"}


async def test_admin_scope_outside_hq_is_not_admin(client):
    assert_problem(await client.post("/things", json=GOOD, headers=bearer(scopes="admin")), 403)


async def test_validation_error_lists_fields(client):
    body = assert_problem(
        await client.post("/things", json={"name": "", "count": -1, "extra": 1}, headers=bearer()), 422
    )
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "name"), ("body", "count"), ("body", "extra")} <= locs
    assert all(set(e) == {"loc", "msg"} for e in body["errors"])


async def test_conflict_names_existing_id(client):
    body = assert_problem(await client.post("/things", json={"name": "taken", "count": 0}, headers=bearer()), 409)
    assert body["existing_id"] == "42"


async def test_unexpected_error_is_a_problem_without_trace(client):
    body = assert_problem(await client.post("/things", json={"name": "boom", "count": 0}, headers=bearer()), 500)
    assert "secret internal detail" not in body["detail"] and "Traceback" not in str(body)


async def test_body_over_limit_is_413(client):
    big = {"name": "x" * 2000, "count": 1}
    assert_problem(await client.post("/things", json=big, headers=bearer()), 413)


async def test_malformed_json_is_422(client):
    response = await client.post("/things", content=b"{nope", headers={**bearer(), "content-type": "application/json"})
    assert_problem(response, 422)


async def test_unknown_route_and_method_are_problems(client):
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.get("/things"), 405)


async def test_request_id_and_traceparent_are_echoed(client):
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await client.get("/healthz", headers={"x-request-id": "abc", "traceparent": parent})
    assert response.headers["x-request-id"] == "abc"
    assert response.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert response.headers["traceparent"] != parent


async def test_metrics_exposes_request_counts(client):
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/healthz",service="webtest",status="200"}' in text


def test_settings_refuse_default_secret_in_production(monkeypatch):
    monkeypatch.delenv("EXCHANGE_JWT_SECRET", raising=False)
    monkeypatch.delenv("EXCHANGE_ENVIRONMENT", raising=False)
    with pytest.raises(ValueError, match="EXCHANGE_JWT_SECRET"):
        ServiceSettings()  # the default environment is production
    assert ServiceSettings(environment="development").jwt_secret


def test_shared_variables_are_fallbacks_and_prefixed_ones_win(monkeypatch):
    from common.settings import service_config

    class EventsLike(ServiceSettings):
        model_config = service_config("EVLIKE_")

    monkeypatch.setenv("EXCHANGE_ENVIRONMENT", "development")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared:9092")
    assert EventsLike().kafka_bootstrap_servers == "shared:9092"
    monkeypatch.setenv("EVLIKE_KAFKA_BOOTSTRAP_SERVERS", "own:9092")
    assert EventsLike().kafka_bootstrap_servers == "own:9092"


async def test_chunked_body_over_limit_is_413_not_400(client):
    async def chunks():
        for _ in range(5):
            yield b"x" * 300

    response = await client.post("/things", content=chunks(), headers={**bearer(), "content-type": "application/json"})
    assert_problem(response, 413)


async def test_chunked_body_under_limit_is_read_normally(client):
    async def chunks():
        yield b'{"name": "a",'
        yield b' "count": 1}'

    response = await client.post("/things", content=chunks(), headers={**bearer(), "content-type": "application/json"})
    assert response.status_code == 200, response.text


async def test_input_the_database_cannot_store_is_422(client):
    body = assert_problem(await client.post("/things", json={"name": "nul", "count": 0}, headers=bearer()), 422)
    assert "cannot be stored" in body["detail"]


async def test_unknown_http_methods_share_one_metric_label(client):
    await client.request("FROBNICATE", "/healthz")
    text = (await client.get("/metrics")).text
    assert 'method="FROBNICATE"' not in text and 'method="OTHER"' in text


async def test_fastapi_native_telemetry_stays_off_when_a_tracer_provider_is_configured(monkeypatch):
    # Our metrics are Prometheus, our trace ids our own; FastAPI's OpenTelemetry bridge would start a
    # span per request as soon as some library configured a provider (and checked on every request).
    from opentelemetry import trace

    spans: list[str] = []

    class RecordingProvider(trace.TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            spans.append("tracer asked for")
            return trace.NoOpTracer()

    monkeypatch.setattr(trace, "get_tracer_provider", RecordingProvider)
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/things", json=GOOD, headers=bearer())).status_code == 200
    assert spans == []


async def test_a_body_nested_too_deeply_is_422_not_400():
    # FastAPI parses with json.loads, which raises RecursionError on a few KB of brackets.
    transport = httpx.ASGITransport(app=build_app(max_body_bytes=100_000), raise_app_exceptions=False)
    for nested in (b"[" * 1000 + b"]" * 1000, b'{"name": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                "/things", content=nested, headers={**bearer(), "Content-Type": "application/json"}
            )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [{"loc": ["body"], "msg": "nested too deeply"}]


STANDARD_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/nowhere", None, 404),
        ("POST", "/things", {"name": "", "count": -1}, 422),
        ("POST", "/things", {"name": "taken", "count": 1}, 409),
        ("POST", "/things", {"name": "x" * 2000, "count": 1}, 413),
    ],
)
async def test_every_answer_carries_the_security_headers(client, method, path, body, status):
    response = await client.request(method, path, json=body, headers=bearer())
    assert response.status_code == status
    for name, value in STANDARD_HEADERS.items():
        assert response.headers.get(name) == value, name
    # An API answer is never a document: it may load nothing and be framed nowhere.
    assert response.headers["content-security-policy"] == API_POLICY == "default-src 'none'; frame-ancestors 'none'"
    # It may carry personal data (a talent record) and is never reused: no cache, shared or private, keeps it.
    assert response.headers.get_list("cache-control") == ["no-store"]
    # Outside development and test (this app's settings are production's) browsers are told: HTTPS only.
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_the_api_docs_keep_working_under_their_own_policy(client):
    # Swagger UI and ReDoc are an inline script and a CDN's files; `default-src 'none'` would blank them.
    for path in ("/docs", "/redoc"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_path_prefix_may_have_a_policy_of_its_own():
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(service_name="webtest", jwt_secret=TEST_SECRET)
    app = create_service_app(
        settings=settings,
        title="t",
        description="t",
        lifespan=lifespan,
        content_security_policies={"/page": "default-src 'self'"},
    )

    @app.get("/page/")
    async def page() -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        page = await c.get("/page/")
        assert page.headers["content-security-policy"] == "default-src 'self'"
        assert "cache-control" not in page.headers  # a page's files stay cacheable
        assert (await c.get("/healthz")).headers["content-security-policy"] == API_POLICY


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_no_hsts_in_development_or_test(environment):
    # Served over plain HTTP on a developer's machine: a browser that took HSTS from one https answer on
    # localhost would refuse every other local server's http pages for a year.
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(service_name="webtest", jwt_secret=TEST_SECRET, environment=environment)
    app = create_service_app(settings=settings, title="t", description="t", lifespan=lifespan)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.get("/healthz")
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers


async def test_405_names_every_method_served_at_the_path():
    app = build_app()

    @app.get("/things")
    async def list_things() -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        answer = await c.options("/things")
    assert_problem(answer, 405)
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_every_operation_that_takes_a_token_documents_429_with_retry_after():
    # The rate limit (common.ratelimit) may answer 429 to any request carrying a token: an operation that
    # documents 401 takes one, and the OpenAPI document must list the 429 beside it.
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(service_name="webtest", jwt_secret=TEST_SECRET)
    app = create_service_app(settings=settings, title="t", description="t", lifespan=lifespan)
    problem = {"description": "no token", "content": {"application/problem+json": {"schema": {"type": "object"}}}}

    @app.get("/v1/private", responses={401: problem})
    async def private() -> dict[str, str]:
        return {}

    @app.get("/v1/public")
    async def public() -> dict[str, str]:
        return {}

    paths = app.openapi()["paths"]
    limited = paths["/v1/private"]["get"]["responses"]["429"]
    assert limited["content"] == problem["content"]
    assert limited["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    assert "EXCHANGE_RATE_LIMIT_PER_MINUTE" in limited["description"]
    assert "429" not in paths["/v1/public"]["get"]["responses"]
    assert "429" not in paths["/healthz"]["get"]["responses"]
