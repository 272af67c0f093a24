"""`partners migrate | serve | republish`."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from common.migrations import upgrade
from common.observability import configure_logging
from common.republish import add_republish_command, run_republish

from partners.config import PartnersSettings

SERVICE_DIR = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="partners")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    add_republish_command(sub)
    serve = sub.add_parser("serve", help="run the HTTP API and the outbox relay")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = PartnersSettings()
    if args.command == "migrate":
        upgrade(settings.database_url, SERVICE_DIR)
    elif args.command == "republish":
        from partners.adapters.tables import outbox

        # No aggregates yet: each one wires its RepublishedAggregate here when its issue lands.
        run_republish(settings, outbox, [])
    else:
        from partners.entrypoints.app import create_app

        configure_logging(settings.service_name, settings.log_level)
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
