"""What every service's FastAPI app has: error handlers, request context, body limit,
/healthz, /readyz, /metrics and /asyncapi.json."""

from __future__ import annotations

import asyncio
import inspect
import os
import tempfile
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import AuthConfig
from common.errors import (
    PROBLEM,
    BodyLimit,
    BodyLimitMiddleware,
    install_error_handlers,
    problem_body,
    problem_response,
)
from common.i18n import ACCEPT_LANGUAGE_DOC
from common.kafka.admin import kafka_reachable
from common.observability import (
    KAFKA_BROKER_REACHABLE,
    MULTIPROCESS_DIR,
    RequestContextMiddleware,
    metrics_response,
    redact_access_tokens_in_access_log,
    worker_logging_config,
)
from common.ratelimit import RateLimit
from common.settings import ServiceSettings


@dataclass(frozen=True)
class CheckResult:
    """One dependency's state. `required`: when it fails, the service cannot serve and /readyz is 503;
    otherwise the state is only reported (a broker outage: writes go on into the outbox)."""

    ok: bool
    detail: str | None = None
    required: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "required": self.required, **({"detail": self.detail} if self.detail else {})}


ReadinessDetail = Callable[[], Mapping[str, Any]]  # members added to /readyz's body; never make it 503


ReadinessCheck = Callable[[], Awaitable[CheckResult]]
ReadinessChecks = dict[str, ReadinessCheck]  # app.state.readiness_checks: name → check, in /readyz's body


def database_check(engine: AsyncEngine, timeout: float = 5.0) -> ReadinessCheck:
    async def check() -> CheckResult:
        try:
            async with asyncio.timeout(timeout), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return CheckResult(False, f"database unreachable: {type(exc).__name__}")
        return CheckResult(True)

    return check


def kafka_check(bootstrap_servers: str, service: str) -> ReadinessCheck:
    """Reported, never required: the outbox keeps every write while the broker is away, and taking
    every replica out of rotation would turn a broker outage into a full one."""
    gauge = KAFKA_BROKER_REACHABLE.labels(service)

    async def check() -> CheckResult:
        reachable = await kafka_reachable(bootstrap_servers)
        gauge.set(1 if reachable else 0)
        return CheckResult(reachable, None if reachable else "kafka unreachable", required=False)

    return check


_METRICS_EXAMPLE = (
    "# HELP outbox_backlog Committed messages not yet published\n"
    "# TYPE outbox_backlog gauge\n"
    'outbox_backlog{service="events"} 0.0\n'
)
_READY_EXAMPLE = {
    "status": "ready",
    "topic_retention": {"checked": True, "drop_data": {}},
    "checks": {
        "database": {"ok": True, "required": True},
        "kafka": {"ok": False, "required": False, "detail": "kafka unreachable"},
    },
}
_NOT_READY_EXAMPLE = problem_body(
    503,
    "database unreachable: ConnectionRefusedError",
    checks={
        "database": {"ok": False, "required": True, "detail": "database unreachable: ConnectionRefusedError"},
        "kafka": {"ok": True, "required": False},
    },
)
_ASYNCAPI_EXAMPLE = {"asyncapi": "3.0.0", "info": {"title": "events", "version": "1.0.0"}, "channels": {}}


def operations_router(asyncapi: Callable[[], dict[str, Any]] | None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        summary="The process is up",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Ready to serve: the database is reachable (the broker's state is reported, not required)",
        description=(
            "`topic_retention.drop_data` names the topics this service writes or reads whose configuration would "
            "delete messages by age or size (a rebuild would miss them); it does not make the answer 503."
        ),
        responses={
            200: {"content": {"application/json": {"example": _READY_EXAMPLE}}},
            503: {
                "description": "The database is unreachable",
                "content": {PROBLEM: {"example": _NOT_READY_EXAMPLE}},
            },
        },
    )
    async def readyz(request: Request) -> Response:
        checks: ReadinessChecks = request.app.state.readiness_checks
        names = list(checks)
        results = dict(zip(names, await asyncio.gather(*(checks[n]() for n in names)), strict=True))
        body = {name: result.as_json() for name, result in results.items()}
        failures = [r.detail or name for name, r in results.items() if r.required and not r.ok]
        details = readiness_details(request)
        if failures:
            return problem_response(503, "; ".join(failures), headers={"Retry-After": "1"}, checks=body, **details)
        return JSONResponse({"status": "ready", "checks": body, **details})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"example": _METRICS_EXAMPLE}}}},
    )
    async def metrics() -> Response:
        return metrics_response()

    if asyncapi is not None:
        document = asyncapi

        @router.get(
            "/asyncapi.json",
            summary="The event catalogue (AsyncAPI 3)",
            responses={200: {"content": {"application/json": {"example": _ASYNCAPI_EXAMPLE}}}},
        )
        async def asyncapi_json() -> dict[str, Any]:
            return document()

    return router


def readiness_details(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {}
    details: list[ReadinessDetail] = request.app.state.readiness_details
    for detail in details:
        body.update(detail())
    return body


Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class DirectRoute:
    """What `scope["route"]` holds for a direct route: the path template the metrics label it with (the
    included APIRoute is not in `app.routes` to be looked up: FastAPI keeps included routers whole)."""

    path: str


class DirectRoutes:
    """Serves a few hot `(method, path)` pairs by calling their endpoint straight from the middleware
    stack, skipping Starlette's and FastAPI's routing, exception and dependency layers (about a
    third of a small request's CPU). Only for endpoints that take the bare `Request` and return a
    `Response`: the same function stays registered as a FastAPI route (OpenAPI, any other method),
    an exception becomes the answer of the app's own handler for it (problem+json), and
    `scope["route"]` is set so metrics name the route as usual."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.fastapi = fastapi
        self.routes = {key: (endpoint, DirectRoute(key[1])) for key, endpoint in routes.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.routes.get((scope["method"], scope["path"]))
            if found is not None and not scope.get("root_path"):
                endpoint, scope["route"] = found
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as exc:
                    response = await self._handle(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _handle(self, request: Request, exc: Exception) -> Response:
        handlers = self.fastapi.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(request, exc)
                response: Response = await answer if inspect.isawaitable(answer) else answer
                return response
        raise exc


# An API answer is JSON or text, never a document: it may load nothing and be framed nowhere.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc pages are an inline script plus a CDN's files: only framing is refused there.
DOCS_POLICY = "frame-ancestors 'none'"
_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_STANDARD_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
# An API answer may carry personal data (a talent record) and is never reused: no cache may keep it. A
# page's own files (the dashboard's, under a prefix of `policies`) stay cacheable.
_API_ONLY_HEADERS = [(b"cache-control", b"no-store")]
# HTTPS only, for a year, sent by the services themselves so it does not depend on the gateway's
# configuration (a browser ignores it on plain HTTP). Not in development or test, where a browser that
# saw it on localhost would refuse every other local server's plain-HTTP pages.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """The standard security headers for every HTTP answer (with `hsts`, also `HSTS`), and a
    Content-Security-Policy: the app's own for a path under one of `policies`' prefixes, else `API_POLICY`
    plus `Cache-Control: no-store` (`DOCS_POLICY` on the docs pages; no Cache-Control on the paths of
    `own_cache_control`, whose answers set theirs, such as an SSE stream). Prepared once; the request
    context middleware appends them in the `send` it wraps anyway, so they cost no middleware layer of
    their own on the hot paths."""

    def __init__(
        self, policies: Mapping[str, str], *, hsts: bool = False, own_cache_control: Collection[str] = ()
    ) -> None:
        self.standard = [*_STANDARD_HEADERS, *([HSTS] if hsts else [])]
        self.by_prefix = [(prefix, self._headers(policy)) for prefix, policy in policies.items()]
        self.api = [*self._headers(API_POLICY), *_API_ONLY_HEADERS]
        docs = self._headers(DOCS_POLICY)
        self.exact = {path: self._headers(API_POLICY) for path in own_cache_control} | dict.fromkeys(_DOCS_PATHS, docs)

    def _headers(self, policy: str) -> list[tuple[bytes, bytes]]:
        return [*self.standard, (b"content-security-policy", policy.encode())]

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        for prefix, headers in self.by_prefix:
            if path.startswith(prefix):
                return headers
        return self.exact.get(path, self.api)


ACCEPT_LANGUAGE_PARAMETER: dict[str, Any] = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": ACCEPT_LANGUAGE_DOC,
    "schema": {"type": "string", "examples": ["zh-CN", "zh", "en"]},
}


def edit_operations(app: FastAPI, edit: Callable[[dict[str, Any]], None]) -> None:
    """Apply `edit` to every operation of the OpenAPI document, once, when it is first generated."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict):
                        edit(operation)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def document_accept_language(app: FastAPI) -> None:
    """Every operation of the OpenAPI document lists `Accept-Language` (read only to answer an error)."""

    def add(operation: dict[str, Any]) -> None:
        if "responses" in operation:
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name", "").lower() == "accept-language" for p in parameters):
                parameters.append(ACCEPT_LANGUAGE_PARAMETER)

    edit_operations(app, add)


RATE_LIMITED_DESCRIPTION = (
    "More requests a minute for this token's subject than `EXCHANGE_RATE_LIMIT_PER_MINUTE` allows (only when "
    "it is set; per process); retry after `Retry-After` seconds"
)
_RETRY_AFTER = {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}


def document_rate_limit(app: FastAPI) -> None:
    """Every operation that takes a token (it documents 401) also documents the rate limit's 429, with the
    401's content (the same problem+json)."""

    def add(operation: dict[str, Any]) -> None:
        responses = operation.get("responses", {})
        if "401" in responses and "429" not in responses:
            responses["429"] = {
                "description": RATE_LIMITED_DESCRIPTION,
                "headers": {"Retry-After": _RETRY_AFTER},
                "content": responses["401"].get("content", {}),
            }

    edit_operations(app, add)


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    lifespan: Any,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
    direct_routes: Mapping[tuple[str, str], Endpoint] | None = None,
    content_security_policies: Mapping[str, str] | None = None,
    body_limit: BodyLimit | None = None,
    own_cache_control: Collection[str] = (),
) -> FastAPI:
    """`direct_routes`: see `DirectRoutes`; the routes themselves are included by the caller.
    `content_security_policies`: path prefix → policy, for pages the app serves (see `SecurityHeaders`).
    `own_cache_control`: paths whose answers set their own Cache-Control (see `SecurityHeaders`).
    `body_limit`: per-route body limits (`common.errors.BodyLimit`, e.g. `route_limits`)."""
    # Metrics are Prometheus and trace ids our own (common.observability): FastAPI's native OpenTelemetry
    # stays off, which also spares the look-up of its global providers on every request (~2 % of the
    # CPU of a single event POST, bench/events/README.md).
    telemetry_off: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    description = f"{description}\n\n**Language** (`Accept-Language` header): {ACCEPT_LANGUAGE_DOC}"
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan, telemetry=telemetry_off)
    document_accept_language(app)
    document_rate_limit(app)
    app.state.auth = AuthConfig(
        settings.jwt_secret,
        settings.jwks_url,
        settings.jwt_audience,
        issuer=settings.jwt_issuer,
        keys=settings.jwt_keys,
        current_kid=settings.jwt_current_kid,
    )
    app.state.readiness_checks = {}
    redact_access_tokens_in_access_log()  # here, so every worker process of `serve --workers N` has it
    app.state.readiness_details = []
    install_error_handlers(app)
    if direct_routes:  # innermost: inside the body limit and the request context
        app.add_middleware(DirectRoutes, fastapi=app, routes=direct_routes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, limit_for=body_limit)
    if settings.rate_limit_per_minute:  # off: not installed, so it costs nothing
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_minute, auth=lambda: app.state.auth)
    if settings.dashboard_origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.dashboard_origin],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-Id"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-Id"],
            max_age=600,
        )
    hsts = settings.environment not in ("development", "test")
    security = SecurityHeaders(content_security_policies or {}, hsts=hsts, own_cache_control=own_cache_control)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, response_headers=security.for_path)
    app.include_router(operations_router(asyncapi))
    return app


WORKER_HEALTHCHECK_SECONDS = 60


def serve(factory: str, settings: Any, *, host: str, port: int, workers: int = 1) -> None:
    """Run a service's app with uvicorn: built here from `settings` for one process; with several, each
    worker builds its own from the environment through the `module:function` factory path."""
    import importlib

    import uvicorn

    if workers == 1:
        module, _, function = factory.partition(":")
        app = getattr(importlib.import_module(module), function)(settings)
        uvicorn.run(app, host=host, port=port, log_config=None)
        return
    # Each worker configures its logging as the parent did (JSON with time, level and request id). That
    # imports this package before the worker answers uvicorn's health pings, which on a loaded machine
    # takes longer than uvicorn's 5 s default: a worker killed for it is restarted, killed again, and never
    # serves. WORKER_HEALTHCHECK_SECONDS leaves room for a slow start.
    log_config = worker_logging_config(settings.service_name, settings.log_level) if settings else None
    if os.environ.get(MULTIPROCESS_DIR):  # the operator's own (it must be empty at the start)
        uvicorn.run(
            factory,
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=log_config,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
    else:  # the workers' metrics in files of a fresh directory (common.observability), gone at exit
        with tempfile.TemporaryDirectory(prefix="metrics-") as directory:
            os.environ[MULTIPROCESS_DIR] = directory
            try:
                uvicorn.run(
                    factory,
                    factory=True,
                    workers=workers,
                    host=host,
                    port=port,
                    log_config=log_config,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                )
            finally:
                del os.environ[MULTIPROCESS_DIR]


def document_models(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Put request models that routes parse themselves (a raw body, per-item validation) and the problem
    answers' model into the OpenAPI components, where those routes' `$ref`s point."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                # A request model's definitions win over a response's of the same name (events'
                # `Organizer`): they state what is accepted, and every stored value satisfies them too.
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
