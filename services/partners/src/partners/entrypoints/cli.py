"""`partners migrate | serve | republish | asyncapi`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.republish import add_republish_command

from partners.config import PartnersSettings

SERVICE_DIR = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="partners")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    add_republish_command(sub)
    serve = sub.add_parser("serve", help="run the HTTP API, the outbox relay and the agreement scheduler")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    sub.add_parser("asyncapi", help="print the AsyncAPI document (services/partners/asyncapi.json)")
    args = parser.parse_args(argv)
    if args.command == "asyncapi":
        from partners.contracts import asyncapi

        print(json.dumps(asyncapi(), indent=2, ensure_ascii=False, sort_keys=True))
        return
    settings = PartnersSettings()
    if args.command == "migrate":
        from common.migrations import upgrade

        upgrade(settings.database_url, SERVICE_DIR)
    elif args.command == "republish":
        from common.republish import run_republish

        from partners.adapters.republish import AGGREGATES
        from partners.adapters.tables import outbox

        run_republish(settings, outbox, AGGREGATES)
    else:
        from common.observability import configure_logging
        from common.web import serve as serve_app

        configure_logging(settings.service_name, settings.log_level)
        serve_app("partners.entrypoints.app:create_app", settings, host=args.host, port=args.port)
