"""The partners service's app factory: the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.runtime import ServiceRuntime
from common.web import create_service_app, database_check, kafka_check
from fastapi import FastAPI

from partners.adapters.tables import outbox
from partners.config import PartnersSettings

TOPIC = "exchange.partners.v1"


def create_app(settings: PartnersSettings | None = None) -> FastAPI:
    settings = settings or PartnersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(settings, outbox)
        app.state.runtime = runtime
        app.state.readiness_checks = {
            "database": database_check(runtime.engine),
            "kafka": kafka_check(settings.kafka_bootstrap_servers, settings.service_name),
        }
        app.state.readiness_details = [runtime.topic_retention]
        async with runtime.running([settings.topic(TOPIC)]):
            yield

    return create_service_app(
        settings=settings,
        title="exchange-tracker partners",
        description="Partner organizations, agreements and memberships (the API lands with its issue).",
        lifespan=lifespan,
    )
