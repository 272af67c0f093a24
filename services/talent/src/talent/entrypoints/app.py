"""The talent service's app factory: the composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common.runtime import ServiceRuntime
from common.service import service_app
from fastapi import FastAPI
from starlette.types import Scope

from talent.adapters.pg_store import PgTalentStore
from talent.adapters.sql_store import SqlTalentStore
from talent.adapters.tables import audit_log, outbox
from talent.api.routes import NDJSON, SYNC_PATH, router
from talent.api.schemas import ProblemDetails, SyncRequest, any_record_taken
from talent.application.use_cases import TalentService
from talent.config import TalentSettings
from talent.contracts import TOPIC, asyncapi
from talent.domain.model import PersonRecord


def _body_limit(settings: TalentSettings) -> Any:
    """The JSON sync takes a 10,000-record body; the ndjson stream none (each record is bounded)."""

    def limit(scope: Scope, default: int) -> int | None:
        if scope["path"] != SYNC_PATH or scope["method"] != "POST":
            return default
        media = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if media.split(b";")[0].strip().lower() == NDJSON.encode():
            return None
        return settings.sync_max_body_bytes

    return limit


def create_app(settings: TalentSettings | None = None) -> FastAPI:
    settings = settings or TalentSettings()
    topic = settings.topic(TOPIC)

    @asynccontextmanager
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        store: SqlTalentStore
        if runtime.engine.dialect.name == "postgresql":
            wake = runtime.relay.wake if runtime.relay is not None else (lambda: None)
            store = PgTalentStore(runtime.engine, runtime.sessions, topic, wake_relay=wake)
        else:
            store = SqlTalentStore(runtime.engine, runtime.sessions, topic)
        app.state.talent = TalentService(
            store, chunk=settings.sync_chunk, max_message_bytes=settings.outbox_max_message_bytes
        )
        yield

    app = service_app(
        settings,
        description=(
            "People in the national societies' talent pools and their posts in international organizations. "
            "Societies sync their pools in bulk (`POST /v1/talent/sync`). Personal fields (name, name_en, gender, "
            "birth_year, affiliation, email, orcid) stay in this service's database: every change is published to "
            f"`{TOPIC}` with the person's public state only (see `/asyncapi.json`), and an erased person's personal "
            "fields are deleted. Errors are `application/problem+json`."
        ),
        outbox=outbox,
        topics=[TOPIC],
        started=started,
        routers=[router],
        audit=("/v1/talent", audit_log),
        models=[SyncRequest, PersonRecord, ProblemDetails],
        asyncapi=lambda: asyncapi(topic),
        body_limit=_body_limit(settings),
    )
    documented = app.openapi

    def openapi() -> dict[str, Any]:
        document = documented()
        any_record_taken(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app
