"""`partners migrate | serve | relay | republish | asyncapi`."""

from __future__ import annotations

import json

from common.service import ServiceCommands

from partners.config import PartnersSettings
from partners.contracts import TOPIC

COMMANDS = ServiceCommands(
    "partners",
    PartnersSettings,
    port=8001,
    outbox="partners.adapters.tables:outbox",
    topics=[TOPIC],
    aggregates="partners.adapters.republish:AGGREGATES",
    serve_help="run the HTTP API, the outbox relay and the agreement scheduler",
)


def main(argv: list[str] | None = None) -> None:
    parser, sub = COMMANDS.parser()
    sub.add_parser("asyncapi", help="print the AsyncAPI document (services/partners/asyncapi.json)")
    args = parser.parse_args(argv)
    if COMMANDS.run(args, parser):
        return
    from partners.contracts import asyncapi

    print(json.dumps(asyncapi(), indent=2, ensure_ascii=False, sort_keys=True))
