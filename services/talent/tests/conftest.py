"""Fixtures for the talent service: a migrated real PostgreSQL database, the app with its lifespan
(relay included) on the real broker, record builders and a reader of the topic."""

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
from fastapi import FastAPI
from talent.config import TalentSettings
from talent.contracts import TOPIC
from talent.entrypoints.app import create_app

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def record(n: int | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid sync record; a fresh external_id unless `n` or one is given."""
    n = next(_counter) if n is None else n
    base: dict[str, Any] = {
        "external_id": f"P-{n}",
        "name": f"测试人员{n}",
        "name_en": f"Test Person {n}",
        "gender": "F" if n % 2 else "M",
        "birth_year": 1960 + n % 40,
        "groups": ["engineer", "young_scientist"] if n % 3 else ["woman_scientist"],
        "country": "CN",
        "province": "110000",
        "affiliation": f"Institute {n}",
        "email": f"person{n}@example.org",
        "orcid": "0000-0002-1825-0097",
        "fields": ["materials"],
        "reserve": n % 5 == 0,
        "posts": [
            {"organization": "WFEO", "organization_country": "FR", "role": "vice_president", "start_date": "2022-01-01"}
        ]
        if n % 4 == 0
        else [],
    }
    base.update(overrides)
    return base


class Service:
    def __init__(self, app: FastAPI, settings: TalentSettings, client: httpx.AsyncClient, bootstrap: str) -> None:
        self.app = app
        self.settings = settings
        self.client = client
        self.bootstrap = bootstrap

    @property
    def topic(self) -> str:
        return self.settings.topic(TOPIC)

    async def messages(self, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        records = await read_topic(self.bootstrap, self.topic, expected=expected, timeout=timeout)
        return [
            {"key": r.key.decode(), "raw": r.value, "value": json.loads(r.value), "headers": dict(r.headers)}
            for r in records
        ]


@pytest.fixture(scope="session")
def settings_factory(kafka_bootstrap: str, topic_prefix: str, jwt_secret: str) -> Callable[..., TalentSettings]:
    def make(database_url: str, name: str, **overrides: Any) -> TalentSettings:
        return TalentSettings(
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


async def running_service(settings: TalentSettings, bootstrap: str) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://talent.test", timeout=120) as client:
            yield Service(app, settings, client, bootstrap)


@pytest.fixture(scope="module")
async def service(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any, kafka_bootstrap: str
) -> AsyncIterator[Service]:
    """One migrated PostgreSQL database and one running app per test module (its own topic too)."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:30]
    url = await migrated_database(make_database, f"ta_{name}")
    async for running in running_service(settings_factory(url, name), kafka_bootstrap):
        yield running


class TalentLiveServer(LiveServer):
    def __init__(self, settings: TalentSettings) -> None:
        super().__init__(create_app(settings), "talent-live-server")
        self.settings = settings


@pytest.fixture(scope="module")
async def live(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any
) -> AsyncIterator[TalentLiveServer]:
    """A migrated database and the app served over real HTTP (schemathesis, the importer, streams)."""
    name = "live_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:24]
    url = await migrated_database(make_database, f"ta_{name}")
    with TalentLiveServer(settings_factory(url, name)) as server:
        yield server
