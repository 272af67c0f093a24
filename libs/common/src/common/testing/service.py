"""One service's app under test, the same way for every service: a migrated database, settings for this
test run, the app with its lifespan behind an httpx client or served over real HTTP. Each service's
conftest names its own settings class, app factory and topic, and keeps only what is its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import inspect

from common.db import create_engine
from common.migrations import downgrade_async, upgrade_async
from common.settings import ServiceSettings
from common.testing.live import LiveServer
from common.testing.plugin import read_topic

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
RunningT = TypeVar("RunningT", bound="RunningService[Any]")


def module_name(request: pytest.FixtureRequest, width: int) -> str:
    """The test module's name without `test_`, cut to `width` characters: its database and topic prefix."""
    name: str = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return name[:width]


async def migrated_database(make_database: Any, name: str, service_dir: Path) -> str:
    """A fresh database of this run, brought to the head of the service's migrations."""
    url: str = await make_database(name)
    await upgrade_async(url, service_dir)
    return url


def settings_for_test(
    settings_class: type[SettingsT],
    *,
    database_url: str,
    name: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    jwt_secret: str,
    **overrides: Any,
) -> SettingsT:
    """The service's settings for one test module: its database, its own topics, the run's broker and secret."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": f"{topic_prefix}{name}.",
        "topic_partitions": 3,
        "jwt_secret": jwt_secret,
        "environment": "test",
    }
    values.update(overrides)
    return settings_class(**values)


@dataclass
class RunningService(Generic[SettingsT]):
    """A running app, its settings and an HTTP client bound to it."""

    app: FastAPI
    settings: SettingsT
    client: httpx.AsyncClient
    bootstrap: str
    topic_name: str

    @property
    def topic(self) -> str:
        return self.settings.topic(self.topic_name)

    async def records(self, expected: int, timeout: float) -> list[Any]:
        """The topic's records, once `expected` of them arrived (or the timeout passed)."""
        return await read_topic(self.bootstrap, self.topic, expected=expected, timeout=timeout)

    async def records_for(self, subject: str, expected: int, timeout: float) -> list[Any]:
        """The records keyed by `subject` (reads the topic until `expected` of them arrived)."""
        deadline = time.monotonic() + timeout
        found: list[Any] = []
        while time.monotonic() < deadline:
            records = await read_topic(self.bootstrap, self.topic, expected=10**9, timeout=1.0)
            found = [r for r in records if r.key.decode() == subject]
            if len(found) >= expected:
                break
        return found


class AppLiveServer(LiveServer, Generic[SettingsT]):
    """The app over real HTTP, remembering its settings (tests read its database through them)."""

    def __init__(self, create_app: Callable[[SettingsT], FastAPI], settings: SettingsT, name: str) -> None:
        super().__init__(create_app(settings), name)
        self.settings = settings


def _no_defaults(_tmp: pytest.TempPathFactory, _name: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ServiceUnderTest(Generic[SettingsT, RunningT]):
    """What a service's conftest says about itself; `fixtures()` gives it `settings_factory`, `service` (one
    migrated database and one running app per test module) and `live` (the same over real HTTP)."""

    name: str
    settings_class: type[SettingsT]
    create_app: Callable[[SettingsT], FastAPI]
    topic: str
    service_dir: Path
    running_class: type[RunningT]
    client_timeout: float = 30.0
    # Settings of the service's own for every test module, from pytest's temporary directories and the name.
    settings_defaults: Callable[[pytest.TempPathFactory, str], dict[str, Any]] = field(default=_no_defaults)

    @property
    def database_prefix(self) -> str:
        return self.name[:2] + "_"

    async def migrated_database(self, make_database: Any, name: str) -> str:
        return await migrated_database(make_database, name, self.service_dir)

    async def running_service(self, settings: SettingsT, bootstrap: str) -> AsyncIterator[RunningT]:
        """The app with its lifespan running (relay, consumers, schedulers), a client that calls it in-process."""
        app = self.create_app(settings)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            base_url = f"http://{self.name}.test"
            async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=self.client_timeout) as client:
                yield self.running_class(app, settings, client, bootstrap, self.topic)

    def live_server(self, settings: SettingsT) -> AppLiveServer[SettingsT]:
        """`with SERVICE.live_server(settings) as server:` the app over real HTTP on a free port."""
        return AppLiveServer(self.create_app, settings, f"{self.name}-live-server")

    def fixtures(self) -> tuple[Any, Any, Any]:
        """`settings_factory, service, live = SERVICE.fixtures()` in the service's conftest."""

        @pytest.fixture(scope="session")
        def settings_factory(
            kafka_bootstrap: str, topic_prefix: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Callable[..., SettingsT]:
            def make(database_url: str, name: str, **overrides: Any) -> SettingsT:
                values = self.settings_defaults(tmp_path_factory, name) | overrides
                return settings_for_test(
                    self.settings_class,
                    database_url=database_url,
                    name=name,
                    kafka_bootstrap=kafka_bootstrap,
                    topic_prefix=topic_prefix,
                    jwt_secret=jwt_secret,
                    **values,
                )

            return make

        @pytest.fixture(scope="module")
        async def service(
            request: pytest.FixtureRequest, make_database: Any, settings_factory: Any, kafka_bootstrap: str
        ) -> AsyncIterator[RunningT]:
            """One migrated database and one running app per test module (its own topic too)."""
            name = module_name(request, 30)
            url = await self.migrated_database(make_database, self.database_prefix + name)
            async for running in self.running_service(settings_factory(url, name), kafka_bootstrap):
                yield running

        @pytest.fixture(scope="module")
        async def live(
            request: pytest.FixtureRequest, make_database: Any, settings_factory: Any
        ) -> AsyncIterator[AppLiveServer[SettingsT]]:
            """A migrated database and the app served over real HTTP (schemathesis, uploaders, streams)."""
            name = "live_" + module_name(request, 24)
            url = await self.migrated_database(make_database, self.database_prefix + name)
            with self.live_server(settings_factory(url, name)) as server:
                yield server

        return settings_factory, service, live


async def table_names(url: str) -> set[str]:
    """The tables in the database, as SQLAlchemy's inspector finds them."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def check_up_down_up(url: str, service_dir: Path, tables: set[str], *, down_to: str) -> None:
    """The migrations go up (`tables` made), down to `down_to` (`tables` gone, the outbox kept), down to
    nothing, and up again."""
    await upgrade_async(url, service_dir)
    assert await table_names(url) >= tables
    await downgrade_async(url, service_dir, down_to)
    left = await table_names(url)
    assert not tables & left and "outbox" in left, left
    await downgrade_async(url, service_dir, "base")
    await upgrade_async(url, service_dir)
    assert await table_names(url) >= tables
