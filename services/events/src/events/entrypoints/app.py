"""The events service's app factory: the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.runtime import ServiceRuntime
from common.web import create_service_app, database_check, kafka_check
from fastapi import FastAPI

from events.adapters.tables import outbox
from events.api.routes import router
from events.application.use_cases import EventsService
from events.config import EventsSettings
from events.contracts import TOPIC, asyncapi


def create_app(settings: EventsSettings | None = None) -> FastAPI:
    settings = settings or EventsSettings()
    topic = settings.topic(TOPIC)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(settings, outbox)
        app.state.runtime = runtime
        app.state.events = EventsService(runtime.sessions, topic)
        app.state.readiness_checks = [database_check(runtime.engine), kafka_check(settings.kafka_bootstrap_servers)]
        async with runtime.running([topic]):
            yield

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
    )
    app.include_router(router)
    return app
