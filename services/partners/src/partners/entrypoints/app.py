"""The partners service's app factory: the composition root."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.audit import audit_retention, audit_router
from common.errors import route_limits
from common.runtime import ServiceRuntime
from common.service import attach_runtime
from common.web import create_service_app, document_models
from fastapi import FastAPI

from partners.adapters.documents import LocalDocumentStorage
from partners.adapters.store import SqlStore
from partners.adapters.tables import audit_log, outbox
from partners.api.routes import router
from partners.api.schemas import ProblemDetails
from partners.application.use_cases import MAX_DOCUMENT_BYTES, PartnersService
from partners.config import PartnersSettings
from partners.contracts import TOPIC, asyncapi
from partners.entrypoints.scheduler import run_scheduler

# The upload route takes a PDF of up to 20 MB (and a little framing); every other route keeps the limit.
DOCUMENT_ROUTE = ("PUT", r"/v1/partners/agreements/[^/]+/document", MAX_DOCUMENT_BYTES + 64 * 1024)


def create_app(settings: PartnersSettings | None = None) -> FastAPI:
    settings = settings or PartnersSettings()
    topic = settings.topic(TOPIC)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(settings, outbox)
        attach_runtime(app, runtime)
        store = SqlStore(runtime.sessions, topic, max_message_bytes=settings.outbox_max_message_bytes)
        service = PartnersService(store, LocalDocumentStorage(settings.documents_dir), today=settings.today)
        app.state.partners = service
        retention = audit_retention(runtime.engine, audit_log, retention_days=settings.audit_retention_days)
        async with runtime.running([topic]), retention:
            scheduler = (
                asyncio.create_task(run_scheduler(service, settings.scheduler_interval_seconds))
                if settings.scheduler_enabled
                else None
            )
            try:
                yield
            finally:
                if scheduler is not None:
                    scheduler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await scheduler
                store.close()

    app = create_service_app(
        settings=settings,
        title="exchange-tracker partners",
        description=(
            "Partner organizations, cooperation agreements (with their whole lifecycle: renewals, renewal "
            "notices, expiry by itself, termination, signed documents, history) and memberships in "
            f"international organizations. Every committed change is published to `{TOPIC}` as a CloudEvent "
            "(see `/asyncapi.json`). Days are dates in the association's time zone (`EXCHANGE_TIMEZONE`). "
            "Errors are `application/problem+json`."
        ),
        lifespan=lifespan,
        asyncapi=lambda: asyncapi(topic),
        body_limit=route_limits([DOCUMENT_ROUTE]),
    )
    app.include_router(router)
    app.include_router(audit_router("/v1/partners", audit_log))
    document_models(app, [ProblemDetails])
    return app
