"""The reporting service's app factory: the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from common.db import create_engine, is_sqlite, session_factory
from common.kafka.consumer import ConsumerRunner, dlq_topic
from common.regions import default_catalogue
from common.runtime import ServiceRuntime, tune_gc_for_batches
from common.service import attach_runtime
from common.web import create_service_app
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine

from reporting.adapters.tables import inbox
from reporting.adapters.writers import projection_writer
from reporting.api.routes import router
from reporting.catalogue import labels
from reporting.config import ReportingSettings
from reporting.projections.handler import ProjectionHandler
from reporting.stream.broadcaster import MetricsBroadcaster
from reporting.stream.changes_channel import ChangeListener, NotifyAnnouncer

STATIC = Path(__file__).resolve().parents[1] / "static"
# The dashboard loads only its own files and talks only to this service. Scripts and style sheets come
# from files (no inline code, no eval); style *attributes* stay allowed because ECharts writes its
# tooltips' markup with them (they cannot run code).
DASHBOARD_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def create_read_engine(url: str) -> AsyncEngine:
    """Reads are single statements: autocommit saves the BEGIN/ROLLBACK round trips, and no pre-ping
    (a dropped connection fails one read, and the pool replaces it)."""
    if is_sqlite(url):
        return create_engine(url)
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(settings, None)  # reporting publishes nothing
        read_engine = create_read_engine(settings.database_url)
        read_sessions = session_factory(read_engine)
        broadcaster = MetricsBroadcaster(
            read_sessions,
            coalesce_ms=settings.stream_coalesce_ms,
            buffer=settings.stream_buffer,
            queue_size=settings.stream_queue_size,
            max_subscribers=settings.sse_max_subscribers,
        )
        # PostgreSQL: consumers announce changed regions in their transactions and every process
        # listens, so each stream is complete however many processes consume (changes_channel.py).
        shared = not is_sqlite(settings.database_url)
        handler = ProjectionHandler(projection_writer, announcer=NotifyAnnouncer() if shared else None)
        listener = ChangeListener(runtime.engine, broadcaster.notify, broadcaster.notify_all) if shared else None
        default_catalogue().regions_of_country("DE")  # load the catalogue before the GC freezes the heap
        tune_gc_for_batches()

        async def publish_changes() -> None:
            # Right after the batch's database commit — not after the offset commit — so the stream
            # does not wait for a broker round trip; the figures it reads are committed.
            broadcaster.notify(handler.take_changed_regions())

        if settings.consumer_enabled:
            runtime.consumers.append(
                ConsumerRunner(
                    service=settings.service_name,
                    topics=settings.source_topics(),
                    group_id=settings.consumer_group,
                    sessions=runtime.sessions,
                    inbox=inbox,
                    handler=handler,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    max_batch=settings.max_batch,
                    inbox_retention=timedelta(days=settings.inbox_retention_days),
                    after_db_commit=None if shared else publish_changes,
                )
            )
        app.state.read_sessions = read_sessions
        app.state.handler = handler
        app.state.broadcaster = broadcaster
        attach_runtime(app, runtime)
        broadcaster.start()
        topics = settings.source_topics()
        try:
            # The dead-letter topics are this service's (its consumer writes them); the others are read.
            async with runtime.running([dlq_topic(t) for t in topics], read=topics):
                if listener is not None:
                    listener.start()
                    await listener.wait_listening()  # no announcement is missed once we serve
                try:
                    yield
                finally:
                    if listener is not None:
                        await listener.stop()
        finally:
            await broadcaster.stop()
            await read_engine.dispose()

    app = create_service_app(
        settings=settings,
        title="exchange-tracker reporting",
        description=(
            "Per-region metrics, targets, reporting bodies, a live stream, annual exports and the dashboard "
            "(at /dashboard/). Every read needs a token with `reporting:read`."
        ),
        lifespan=lifespan,
        content_security_policies={"/dashboard": DASHBOARD_POLICY},
        own_cache_control=["/v1/metrics/stream"],  # sse-starlette's `no-store`, not a second one
    )
    app.state.settings = settings
    app.include_router(router)

    async def dashboard_redirect() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    async def dashboard_labels() -> JSONResponse:
        return JSONResponse(labels())  # public, as the page itself: names and units, no figures

    app.add_api_route("/dashboard", dashboard_redirect, methods=["GET"], include_in_schema=False)
    app.add_api_route("/dashboard/labels.json", dashboard_labels, methods=["GET"], include_in_schema=False)
    app.mount("/dashboard", StaticFiles(directory=STATIC / "dashboard", html=True), name="dashboard")
    return app
