"""What every service's FastAPI app has: error handlers, request context, body limit,
/healthz, /readyz, /metrics and /asyncapi.json."""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import AuthConfig
from common.errors import PROBLEM, BodyLimitMiddleware, install_error_handlers, problem_body
from common.kafka.admin import kafka_reachable
from common.observability import MULTIPROCESS_DIR, RequestContextMiddleware, metrics_response
from common.settings import ServiceSettings

ReadinessCheck = Callable[[], Awaitable[str | None]]  # None when fine, else what is wrong


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    async def check() -> str | None:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None

    return check


def kafka_check(bootstrap_servers: str) -> ReadinessCheck:
    async def check() -> str | None:
        return None if await kafka_reachable(bootstrap_servers) else "kafka unreachable"

    return check


_METRICS_EXAMPLE = (
    "# HELP outbox_backlog Committed messages not yet published\n"
    "# TYPE outbox_backlog gauge\n"
    'outbox_backlog{service="events"} 0.0\n'
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
        summary="Database and Kafka reachable",
        responses={
            200: {"content": {"application/json": {"example": {"status": "ready"}}}},
            503: {
                "description": "A dependency is unreachable",
                "content": {PROBLEM: {"example": problem_body(503, "kafka unreachable")}},
            },
        },
    )
    async def readyz(request: Request) -> Response:
        checks: list[ReadinessCheck] = request.app.state.readiness_checks
        failures = [f for f in [await c() for c in checks] if f]
        if failures:
            return JSONResponse(problem_body(503, "; ".join(failures)), status_code=503, media_type=PROBLEM)
        return JSONResponse({"status": "ready"})

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


Endpoint = Callable[[Request], Awaitable[Response]]


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
        self.routes = dict(routes)
        self._documented: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["method"], scope["path"])
            endpoint = self.routes.get(key)
            if endpoint is not None and not scope.get("root_path"):
                scope["route"] = self._route(key)
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as exc:
                    response = await self._handle(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _route(self, key: tuple[str, str]) -> Any:
        if key not in self._documented:
            method, path = key
            found = [
                r
                for r in self.fastapi.routes
                if isinstance(r, APIRoute) and r.path == path and method in (r.methods or ())
            ]
            self._documented[key] = found[0] if found else None
        return self._documented[key]

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


class SecurityHeaders:
    """The standard security headers for every HTTP answer, and a Content-Security-Policy: the app's own
    for a path under one of `policies`' prefixes, else `API_POLICY` (`DOCS_POLICY` on the docs pages).
    Prepared once; the request context middleware appends them in the `send` it wraps anyway, so they
    cost no middleware layer of their own on the hot paths."""

    def __init__(self, policies: Mapping[str, str]) -> None:
        self.by_prefix = [(prefix, self._headers(policy)) for prefix, policy in policies.items()]
        self.api = self._headers(API_POLICY)
        self.docs = self._headers(DOCS_POLICY)

    @staticmethod
    def _headers(policy: str) -> list[tuple[bytes, bytes]]:
        return [*_STANDARD_HEADERS, (b"content-security-policy", policy.encode())]

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        for prefix, headers in self.by_prefix:
            if path.startswith(prefix):
                return headers
        return self.docs if path in _DOCS_PATHS else self.api


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    lifespan: Any,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
    direct_routes: Mapping[tuple[str, str], Endpoint] | None = None,
    content_security_policies: Mapping[str, str] | None = None,
) -> FastAPI:
    """`direct_routes`: see `DirectRoutes`; the routes themselves are included by the caller.
    `content_security_policies`: path prefix → policy, for pages the app serves (see `SecurityHeaders`)."""
    # Metrics are Prometheus and trace ids our own (common.observability): FastAPI's native OpenTelemetry
    # stays off, which also spares the look-up of its global providers on every request (~2 % of the
    # CPU of a single event POST, bench/events/README.md run 14).
    telemetry_off: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan, telemetry=telemetry_off)
    app.state.auth = AuthConfig(settings.jwt_secret, settings.jwks_url, settings.jwt_audience)
    app.state.readiness_checks = []
    install_error_handlers(app)
    if direct_routes:  # innermost: inside the body limit and the request context
        app.add_middleware(DirectRoutes, fastapi=app, routes=direct_routes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    security = SecurityHeaders(content_security_policies or {})
    app.add_middleware(RequestContextMiddleware, service=settings.service_name, response_headers=security.for_path)
    app.include_router(operations_router(asyncapi))
    return app


def serve(factory: str, settings: Any, *, host: str, port: int, workers: int = 1) -> None:
    """Run a service's app with uvicorn: built here from `settings` for one process; with several, each
    worker builds its own from the environment through the `module:function` factory path."""
    import importlib

    import uvicorn

    if workers == 1:
        module, _, function = factory.partition(":")
        app = getattr(importlib.import_module(module), function)(settings)
        uvicorn.run(app, host=host, port=port, log_config=None)
    elif os.environ.get(MULTIPROCESS_DIR):  # the operator's own (it must be empty at the start)
        uvicorn.run(factory, factory=True, workers=workers, host=host, port=port, log_config=None)
    else:  # the workers' metrics in files of a fresh directory (common.observability), gone at exit
        with tempfile.TemporaryDirectory(prefix="metrics-") as directory:
            os.environ[MULTIPROCESS_DIR] = directory
            try:
                uvicorn.run(factory, factory=True, workers=workers, host=host, port=port, log_config=None)
            finally:
                del os.environ[MULTIPROCESS_DIR]
