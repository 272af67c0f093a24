"""The events service's app factory: the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.audit import audit_retention, audit_router
from common.regions import is_country_code
from common.runtime import ServiceRuntime, tune_gc_for_batches
from common.service import attach_runtime
from common.web import create_service_app, document_models
from fastapi import FastAPI

from events.adapters.pg import PgPool, connector
from events.adapters.postgres import PostgresEventStore
from events.adapters.repository import SqlEventStore
from events.adapters.tables import audit_log, outbox
from events.api.routes import record_event, router
from events.api.schemas import BatchRequest, ProblemDetails
from events.application.use_cases import EventsService
from events.config import EventsSettings
from events.contracts import TOPIC, asyncapi
from events.domain.model import EventCreate


async def _runtime(settings: EventsSettings) -> ServiceRuntime:
    """The common runtime, with the request engine sized by this service's settings."""
    runtime = ServiceRuntime.build(
        settings,
        outbox,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
        relay_wake_delay=settings.relay_wake_delay,
    )
    is_country_code("CN")  # load the country tables now, not in the first request
    return runtime


def _event_store(settings: EventsSettings, runtime: ServiceRuntime, topic: str) -> SqlEventStore:
    """The store for the database URL: on PostgreSQL, new events go through raw asyncpg connections of
    their own (adapters/pg.py), sized like the request engine."""
    if runtime.engine.dialect.name == "postgresql":
        pool = PgPool(connector(settings.database_url), settings.db_pool_size)
        wake = runtime.relay.wake if runtime.relay is not None else None
        return PostgresEventStore(runtime.sessions, pool, topic=topic, wake=wake)
    return SqlEventStore(runtime.sessions, topic=topic)


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    settings = settings or EventsSettings()
    topic = settings.topic(TOPIC)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await _runtime(settings)
        store = _event_store(settings, runtime, topic)
        app.state.events = EventsService(store, max_message_bytes=settings.outbox_max_message_bytes)
        attach_runtime(app, runtime)
        retention = audit_retention(runtime.engine, audit_log, retention_days=settings.audit_retention_days)
        try:
            async with runtime.running([topic]), retention:
                # The country/region tables and the app are loaded by now and live as long as the
                # process: moving them out of the collector's generations keeps full collections short
                # (they were visible as tens of milliseconds in the p99 latency). A batch of 1,000
                # events keeps ~100,000 objects alive while it is recorded: with the default
                # thresholds they were scanned by ~150 collections per batch.
                tune_gc_for_batches()
                try:
                    yield
                finally:  # the single creates under way get their answers, the relay still running
                    await app.state.events.drain()
        finally:
            await store.close()

    app = create_service_app(
        settings=settings,
        title="exchange-tracker events",
        description=(
            "Exchange events (conferences, forums, dialogues, delegations, youth camps, exhibitions, …) posted by "
            "provincial associations, national societies and HQ. Every committed change is published to "
            f"`{TOPIC}` as a CloudEvent (see `/asyncapi.json`). Errors are `application/problem+json`."
        ),
        lifespan=lifespan,
        asyncapi=lambda: asyncapi(topic),
        # The single POST, the hot path, is called straight from the middleware stack (common.web).
        direct_routes={("POST", "/v1/events"): record_event},
    )
    app.include_router(router)
    app.include_router(audit_router("/v1/events", audit_log))
    document_models(app, [EventCreate, BatchRequest, ProblemDetails])
    return app
