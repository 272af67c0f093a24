"""What every service's FastAPI app has: error handlers, request context, body limit,
/healthz, /readyz, /metrics and /asyncapi.json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import AuthConfig
from common.errors import PROBLEM, BodyLimitMiddleware, install_error_handlers, problem_body
from common.kafka.admin import kafka_reachable
from common.observability import RequestContextMiddleware, metrics_response
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


def operations_router(asyncapi: Callable[[], dict[str, Any]] | None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Database and Kafka reachable",
        responses={503: {"description": "A dependency is unreachable", "content": {PROBLEM: {}}}},
    )
    async def readyz(request: Request) -> Response:
        checks: list[ReadinessCheck] = request.app.state.readiness_checks
        failures = [f for f in [await c() for c in checks] if f]
        if failures:
            return JSONResponse(problem_body(503, "; ".join(failures)), status_code=503, media_type=PROBLEM)
        return JSONResponse({"status": "ready"})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return metrics_response()

    if asyncapi is not None:
        document = asyncapi

        @router.get("/asyncapi.json", summary="The event catalogue (AsyncAPI 3)")
        async def asyncapi_json() -> dict[str, Any]:
            return document()

    return router


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    lifespan: Any,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.auth = AuthConfig(settings.jwt_secret, settings.jwks_url, settings.jwt_audience)
    app.state.readiness_checks = []
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    app.include_router(operations_router(asyncapi))
    return app
