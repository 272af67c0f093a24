"""The service skeleton (common.service): the shared subcommands on a real SQLite file, and the app it
builds against the real broker."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from common import web
from common.audit import audit_table
from common.outbox import outbox_table
from common.runtime import ServiceRuntime
from common.service import ServiceCommands, service_app
from common.settings import ServiceSettings, service_config
from common.testing.plugin import TEST_SECRET
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData

PARTNERS_DIR = Path(__file__).resolve().parents[3] / "services" / "partners"
OUTBOX = outbox_table(MetaData())


class SkeletonSettings(ServiceSettings):
    model_config = service_config("SKELETON_")

    service_name: str = "skeleton"


class SkeletonCommands(ServiceCommands):
    @property
    def service_dir(self) -> Path:
        return PARTNERS_DIR  # any service's migrations: they create the outbox


def commands(**overrides: object) -> ServiceCommands:
    options: dict[str, object] = {
        "name": "skeleton",
        "settings": SkeletonSettings,
        "app": "skeleton.app:create_app",
        "port": 8123,
        "outbox": f"{__name__}:OUTBOX",
        "topics": ["exchange.skeleton.v1"],
    }
    return SkeletonCommands(**{**options, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "skeleton.db"
    monkeypatch.setenv("SKELETON_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("SKELETON_ENVIRONMENT", "test")
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    calls: list[dict[str, object]] = []

    def fake_serve(factory: str, settings: ServiceSettings, **options: object) -> None:
        calls.append({"factory": factory, "service": settings.service_name, **options})

    monkeypatch.setattr(web, "serve", fake_serve)
    return calls


def test_migrate_applies_the_services_migrations(database: Path) -> None:
    commands().main(["migrate"])
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"outbox", "inbox", "alembic_version"} <= tables


def test_serve_hands_the_factory_path_and_every_flag_to_the_server(database: Path, served: list) -> None:
    commands().main(["serve", "--host", "0.0.0.0", "--port", "9001", "--workers", "3"])
    assert served == [
        {"factory": "skeleton.app:create_app", "service": "skeleton", "host": "0.0.0.0", "port": 9001, "workers": 3}
    ]
    commands().main(["serve"])
    assert served[-1] == {**served[0], "host": "127.0.0.1", "port": 8123, "workers": 1}


def test_several_workers_on_sqlite_are_refused_where_processes_would_not_share(
    database: Path, served: list, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        commands(workers_need_postgres=True).main(["serve", "--workers", "2"])
    assert exited.value.code == 2
    assert "--workers above 1 needs PostgreSQL (SKELETON_DATABASE_URL)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        commands().main(["serve", "--workers", "0"])
    assert not served


def test_a_service_without_an_outbox_has_no_relay_nor_republish(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("relay", "republish"):
        with pytest.raises(SystemExit):
            commands(outbox=None).main([command])
        assert "invalid choice" in capsys.readouterr().err


def test_republish_without_aggregates_says_there_is_nothing(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands().main(["republish"])
    assert "skeleton publishes no aggregates yet: nothing to republish" in capsys.readouterr().out


def test_a_command_of_the_service_is_left_to_it() -> None:
    parser, sub = commands().parser()
    sub.add_parser("own")
    assert commands().run(parser.parse_args(["own"]), parser) is False


async def test_the_app_starts_its_runtime_and_reports_readiness(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = SkeletonSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_SECRET,
        environment="test",
    )
    app = service_app(settings, title="skeleton", description="d", outbox=OUTBOX, topics=["exchange.skeleton.v1"])
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert app.state.runtime.relay is not None
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert set(body["checks"]) == {"database", "kafka"}
        assert "topic_retention" in body


async def test_the_app_runs_the_services_own_tasks_inside_its_runtime_and_mounts_its_routes(
    tmp_path: Path, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """What partners and talent add to the skeleton: work started once the runtime runs (and stopped before
    it stops), their routers, and the audit record with its retention."""
    settings = SkeletonSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        jwt_secret=TEST_SECRET,
        environment="test",
    )
    seen: list[str] = []

    @asynccontextmanager
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        assert app.state.runtime is runtime and runtime.relay is not None
        seen.append("started")
        yield
        seen.append("stopped")

    router = APIRouter()

    @router.get("/v1/skeleton/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    audit_log = audit_table(MetaData())
    app = service_app(
        settings,
        description="d",
        outbox=OUTBOX,
        topics=["exchange.skeleton.v1"],
        started=started,
        routers=[router],
        audit=("/v1/skeleton", audit_log),
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client,
    ):
        assert seen == ["started"]
        assert (await client.get("/v1/skeleton/ping")).json() == {"pong": "yes"}
        assert (await client.get("/v1/skeleton/audit", params={"entity": "x", "entity_id": "1"})).status_code == 401
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert {"/v1/skeleton/ping", "/v1/skeleton/audit"} <= set(paths)
    assert seen == ["started", "stopped"]


def test_a_service_is_found_by_its_package_name() -> None:
    partners = ServiceCommands("partners", SkeletonSettings, port=1)
    assert partners.service_dir == PARTNERS_DIR.resolve()
    assert partners.factory == "partners.entrypoints.app:create_app"
