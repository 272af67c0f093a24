"""Fixtures for the events service: a migrated real PostgreSQL database, the app with its lifespan
(relay included) on the real broker, and helpers to build bodies and read the topic."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from common.migrations import upgrade_async
from common.testing.live import LiveServer
from common.testing.plugin import read_topic
from events.config import EventsSettings
from events.contracts import TOPIC
from events.entrypoints.app import create_app
from fastapi import FastAPI
from sqlalchemy import text

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def body(**overrides: Any) -> dict[str, Any]:
    """A valid event body; a fresh external_ref each call unless given."""
    base: dict[str, Any] = {
        "external_ref": f"ref-{next(_counter)}",
        "title": "China–Germany Forum on Hydrogen Energy",
        "type": "forum",
        "start_date": "2025-05-10",
        "end_date": "2025-05-12",
        "host_country": "CN",
        "host_province": "440000",
        "city": "Guangzhou",
        "participants": 320,
        "foreign_participants": 85,
        "papers": 64,
        "countries": ["DE", "FR"],
        "fields": ["energy"],
        "target_groups": ["young_scientist"],
        "flagship": False,
    }
    base.update(overrides)
    return base


async def outbox_rows_written(connection: Any) -> int:
    """Outbox rows ever inserted (PostgreSQL): the relay deletes the rows it has published, so a count of
    the table says nothing about what was announced; the id sequence only moves forward."""
    last, called = (await connection.execute(text("SELECT last_value, is_called FROM outbox_id_seq"))).one()
    return int(last) if called else 0


class Service:
    """A running app, its settings and an HTTP client bound to it."""

    def __init__(self, app: FastAPI, settings: EventsSettings, client: httpx.AsyncClient, bootstrap: str) -> None:
        self.app = app
        self.settings = settings
        self.client = client
        self.bootstrap = bootstrap

    @property
    def topic(self) -> str:
        return self.settings.topic(TOPIC)

    async def messages(self, expected: int, timeout: float = 20.0) -> list[Any]:
        return await read_topic(self.bootstrap, self.topic, expected=expected, timeout=timeout)

    async def messages_for(self, subject: str, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The messages keyed by `subject` (reads the topic until `expected` of them arrived)."""
        import time

        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            records = await read_topic(self.bootstrap, self.topic, expected=10**9, timeout=1.0)
            found = [
                {"key": r.key.decode(), "value": json.loads(r.value), "headers": dict(r.headers)}
                for r in records
                if r.key.decode() == subject
            ]
            if len(found) >= expected:
                break
        return found


@pytest.fixture(scope="session")
def settings_factory(kafka_bootstrap: str, topic_prefix: str, jwt_secret: str) -> Callable[..., EventsSettings]:
    def make(database_url: str, name: str, **overrides: Any) -> EventsSettings:
        return EventsSettings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=f"{topic_prefix}{name}.",
            topic_partitions=3,
            jwt_secret=jwt_secret,
            environment="test",
            **overrides,
        )

    return make


async def migrated_database(make_database: Any, name: str) -> str:
    url: str = await make_database(name)
    await upgrade_async(url, SERVICE_DIR)
    return url


async def running_service(settings: EventsSettings, bootstrap: str) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://events.test", timeout=30) as client:
            yield Service(app, settings, client, bootstrap)


@pytest.fixture(scope="module")
async def service(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any, kafka_bootstrap: str
) -> AsyncIterator[Service]:
    """One migrated database and one running app per test module (its own topic too)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:30]
    url = await migrated_database(make_database, f"ev_{name}")
    async for running in running_service(settings_factory(url, name), kafka_bootstrap):
        yield running


class EventsLiveServer(LiveServer):
    """The events app over real HTTP, remembering its settings (tests read its database through them)."""

    def __init__(self, settings: EventsSettings) -> None:
        super().__init__(create_app(settings), "events-live-server")
        self.settings = settings


@pytest.fixture(scope="module")
async def live(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any
) -> AsyncIterator[EventsLiveServer]:
    """A migrated database and the app served over real HTTP (for schemathesis and the uploader)."""
    name = "live_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:24]
    url = await migrated_database(make_database, name)
    with EventsLiveServer(settings_factory(url, name)) as server:
        yield server
