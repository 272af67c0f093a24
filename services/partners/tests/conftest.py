"""Fixtures for the partners service: a migrated real PostgreSQL database, the app with its lifespan
(relay and scheduler) on the real broker, and helpers to build bodies and read the topic."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from common.migrations import upgrade_async
from common.testing.live import LiveServer
from common.testing.plugin import read_topic
from fastapi import FastAPI
from partners.config import PartnersSettings
from partners.contracts import TOPIC
from partners.entrypoints.app import create_app

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()
COUNTRIES = ["DE", "FR", "GB", "JP", "KR", "RU", "US", "BR", "ZA", "EG", "TH", "VN", "KZ", "SE", "IT", "ES"]


def organization(**overrides: Any) -> dict[str, Any]:
    """A valid organization body with a fresh name each call unless given."""
    n = next(_counter)
    base: dict[str, Any] = {
        "name": f"Academy of Sciences number {n}",
        "name_zh": f"科学院{n}号",
        "country": COUNTRIES[n % len(COUNTRIES)],
        "kind": "academy",
        "website": "https://example.org",
    }
    base.update(overrides)
    return base


def agreement(partner_ids: list[str], **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "external_ref": f"AGR-{next(_counter)}",
        "title": "Memorandum of understanding on young scientists' exchange",
        "kind": "mou",
        "partner_org_ids": partner_ids,
        "signed_on": "2025-05-10",
        "expires_on": "2035-05-09",
        "fields": ["young_scientists"],
        "flagship": False,
    }
    base.update(overrides)
    return base


class Service:
    """A running app, its settings and an HTTP client bound to it."""

    def __init__(self, app: FastAPI, settings: PartnersSettings, client: httpx.AsyncClient, bootstrap: str) -> None:
        self.app = app
        self.settings = settings
        self.client = client
        self.bootstrap = bootstrap

    @property
    def topic(self) -> str:
        return self.settings.topic(TOPIC)

    async def messages_for(self, subject: str, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The message values keyed by `subject` (reads the topic until `expected` of them arrived)."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            records = await read_topic(self.bootstrap, self.topic, expected=10**9, timeout=1.0)
            found = [json.loads(r.value) for r in records if r.key.decode() == subject]
            if len(found) >= expected:
                break
        return found

    async def create_organization(self, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/partners/organizations", json=organization(**overrides), headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def settings_factory(
    kafka_bootstrap: str, topic_prefix: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., PartnersSettings]:
    def make(database_url: str, name: str, **overrides: Any) -> PartnersSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "topic_prefix": f"{topic_prefix}{name}.",
            "topic_partitions": 3,
            "jwt_secret": jwt_secret,
            "environment": "test",
            "documents_dir": str(tmp_path_factory.mktemp(f"documents-{name}")),
            "scheduler_interval_seconds": 3600,
        }
        values.update(overrides)
        return PartnersSettings(**values)

    return make


async def migrated_database(make_database: Any, name: str) -> str:
    url: str = await make_database(name)
    await upgrade_async(url, SERVICE_DIR)
    return url


async def running_service(settings: PartnersSettings, bootstrap: str) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://partners.test", timeout=30) as client:
            yield Service(app, settings, client, bootstrap)


@pytest.fixture(scope="module")
async def service(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any, kafka_bootstrap: str
) -> AsyncIterator[Service]:
    """One migrated database and one running app per test module (its own topic too)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:30]
    url = await migrated_database(make_database, f"pa_{name}")
    async for running in running_service(settings_factory(url, name), kafka_bootstrap):
        yield running


@pytest.fixture(scope="session")
def headers(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """headers("province", "440000", "partners:write") → {"Authorization": ...}."""

    def make(kind: str = "hq", code: str = "HQ", *scopes: str) -> dict[str, str]:
        return {"Authorization": token(kind, code, *(scopes or ("partners:write",)))}

    return make


class PartnersLiveServer(LiveServer):
    def __init__(self, settings: PartnersSettings) -> None:
        super().__init__(create_app(settings), "partners-live-server")
        self.settings = settings


@pytest.fixture(scope="module")
async def live(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any
) -> AsyncIterator[PartnersLiveServer]:
    """A migrated database and the app served over real HTTP (for schemathesis)."""
    name = "live_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:24]
    url = await migrated_database(make_database, f"pa_{name}")
    with PartnersLiveServer(settings_factory(url, name)) as server:
        yield server
