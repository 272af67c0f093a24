"""The skeleton every service shares: its app (`service_app`, `attach_runtime`) and its command line
(`ServiceCommands`: `migrate`, `serve`, `relay`, `republish`), so a service's entrypoints only name
what is its own.

Modules are named as `"module:attribute"` strings and imported only by the command that needs them:
`events upload` and `events asyncapi` start without loading the app, and `serve --workers N` hands the
app factory's path to uvicorn, whose workers each build their own app.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from pydantic import BaseModel
    from sqlalchemy import Table

    from common.runtime import ServiceRuntime

SHARED_COMMANDS = ("migrate", "serve", "relay", "republish")


def load(path: str) -> Any:
    """The attribute a `"module:attribute"` path names."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def attach_runtime(app: FastAPI, runtime: Any) -> None:
    """Give a started app its `ServiceRuntime` and the readiness every service reports: the database
    and the broker, and the topics' retention (`common.web`'s /readyz)."""
    from common.web import database_check, kafka_check

    settings = runtime.settings
    app.state.runtime = runtime
    app.state.readiness_checks = {
        "database": database_check(runtime.engine),
        "kafka": kafka_check(settings.kafka_bootstrap_servers, settings.service_name),
    }
    app.state.readiness_details = [runtime.topic_retention]


def service_app(
    settings: ServiceSettings,
    *,
    description: str,
    outbox: Table | None,
    topics: Sequence[str],
    title: str | None = None,
    started: Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[None]] | None = None,
    routers: Sequence[APIRouter] = (),
    audit: tuple[str, Table] | None = None,
    models: Sequence[type[BaseModel]] = (),
    **options: Any,
) -> FastAPI:
    """The app of a service that publishes through its outbox: the runtime (engine, relay) is built and
    started in the lifespan; `topics` (unprefixed) are the ones it writes. `started`: the service's own
    work (its store and use cases on `app.state`, a scheduler), entered once the runtime runs and left
    before it stops. `audit`: (route prefix, audit table), the admin's audit route and its retention.
    `models`: schemas the OpenAPI document lists though no route names them. `options` are
    `create_service_app`'s (`asyncapi`, `body_limit`, ...)."""
    from common.audit import audit_retention, audit_router
    from common.runtime import ServiceRuntime
    from common.web import create_service_app, document_models

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = ServiceRuntime.build(settings, outbox)
        attach_runtime(app, runtime)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(runtime.running([settings.topic(topic) for topic in topics]))
            if audit is not None:
                retention = audit_retention(runtime.engine, audit[1], retention_days=settings.audit_retention_days)
                await stack.enter_async_context(retention)
            if started is not None:
                await stack.enter_async_context(started(app, runtime))
            yield

    title = title or f"exchange-tracker {settings.service_name}"
    app = create_service_app(settings=settings, title=title, description=description, lifespan=lifespan, **options)
    for router in routers:
        app.include_router(router)
    if audit is not None:
        app.include_router(audit_router(*audit))
    if models:
        document_models(app, list(models))
    return app


async def run_relay(settings: ServiceSettings, outbox: Table, topics: Sequence[str]) -> None:
    """The outbox relay alone, until cancelled: API workers started with `<SVC>_RELAY_ENABLED=false`
    then run without one, so publishing does not share their event loop (any number of relays may run;
    one publishes at a time)."""
    from common.runtime import ServiceRuntime

    runtime = ServiceRuntime.build(settings.model_copy(update={"relay_enabled": True}), outbox)
    async with runtime.running([settings.topic(topic) for topic in topics]):
        await asyncio.Event().wait()


@dataclass(frozen=True)
class ServiceCommands:
    """A service's shared subcommands. `outbox` and `aggregates` are `"module:attribute"` paths; a
    service without an outbox (it publishes nothing) has no `relay` and no `republish`."""

    name: str  # the command and the service's package
    settings: Callable[[], ServiceSettings]
    port: int
    outbox: str | None = None
    topics: Sequence[str] = ()  # unprefixed, the topics the outbox feeds
    aggregates: str | None = None  # a sequence of common.republish.RepublishedAggregate; none: nothing yet
    serve_help: str = "run the HTTP API and the outbox relay"
    workers_help: str = "processes serving the API"
    workers_need_postgres: bool = False  # several processes would not share what one process holds
    app: str = ""  # the app factory, "module:function" taking the settings; <name>.entrypoints.app:create_app

    @property
    def factory(self) -> str:
        return self.app or f"{self.name}.entrypoints.app:create_app"

    @property
    def service_dir(self) -> Path:
        """Where alembic.ini and migrations/ are: the service's package sits in <service_dir>/src/<name>."""
        spec = importlib.util.find_spec(self.name)
        assert spec is not None and spec.origin is not None, f"no package {self.name}"
        return Path(spec.origin).resolve().parents[2]

    def parser(self, description: str | None = None) -> tuple[argparse.ArgumentParser, Any]:
        """The service's parser with the shared subcommands; add the service's own to the second value."""
        parser = argparse.ArgumentParser(prog=self.name, description=description)
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("migrate", help="apply the database migrations")
        serve = sub.add_parser("serve", help=self.serve_help)
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=self.port)
        serve.add_argument("--workers", type=int, default=1, help=self.workers_help)
        if self.outbox is not None:
            from common.republish import add_republish_command

            sub.add_parser(
                "relay",
                help=f"run only the outbox relay (for API workers started with "
                f"{self.name.upper()}_RELAY_ENABLED=false)",
            )
            add_republish_command(sub)
        return parser, sub

    def run(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> bool:
        """Run `args.command` if it is a shared one (True), else leave it to the caller (False)."""
        if args.command not in SHARED_COMMANDS:
            return False
        settings = self.settings()
        if args.command == "migrate":
            from common.migrations import upgrade

            upgrade(settings.database_url, self.service_dir)
            return True
        from common.observability import configure_logging

        if args.command == "republish":
            from common.republish import run_republish

            aggregates = load(self.aggregates) if self.aggregates else []
            run_republish(settings, load(self.outbox or ""), aggregates)
            return True
        configure_logging(settings.service_name, settings.log_level)
        if args.command == "relay":
            from common.runtime import run_async

            run_async(run_relay(settings, load(self.outbox or ""), self.topics))
            return True
        from common.db import is_sqlite

        if args.workers < 1:
            parser.error("--workers must be at least 1")
        if self.workers_need_postgres and args.workers > 1 and is_sqlite(settings.database_url):
            env = f"{self.name.upper()}_DATABASE_URL"
            parser.error(f"--workers above 1 needs PostgreSQL ({env}): SQLite is one process")
        from common.web import serve

        serve(self.factory, settings, host=args.host, port=args.port, workers=args.workers)
        return True

    def main(self, argv: list[str] | None = None) -> None:
        """The whole command line of a service that has no subcommand of its own."""
        parser, _sub = self.parser()
        self.run(parser.parse_args(argv), parser)
