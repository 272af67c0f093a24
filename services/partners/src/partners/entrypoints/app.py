"""The partners service's app factory: the composition root."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.errors import route_limits
from common.runtime import ServiceRuntime
from common.service import service_app
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
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        store = SqlStore(runtime.sessions, topic, max_message_bytes=settings.outbox_max_message_bytes)
        service = PartnersService(store, LocalDocumentStorage(settings.documents_dir), today=settings.today)
        app.state.partners = service
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

    return service_app(
        settings,
        description=(
            "Partner organizations, cooperation agreements (with their whole lifecycle: renewals, renewal "
            "notices, expiry by itself, termination, signed documents, history) and memberships in "
            f"international organizations. Every committed change is published to `{TOPIC}` as a CloudEvent "
            "(see `/asyncapi.json`). Days are dates in the association's time zone (`EXCHANGE_TIMEZONE`). "
            "Errors are `application/problem+json`."
        ),
        outbox=outbox,
        topics=[TOPIC],
        started=started,
        routers=[router],
        audit=("/v1/partners", audit_log),
        models=[ProblemDetails],
        asyncapi=lambda: asyncapi(topic),
        body_limit=route_limits([DOCUMENT_ROUTE]),
    )
