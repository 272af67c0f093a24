"""`partners migrate | serve | relay | republish`."""

from __future__ import annotations

from pathlib import Path

from common.service import ServiceCommands

from partners.config import PartnersSettings
from partners.contracts import TOPIC

COMMANDS = ServiceCommands(
    name="partners",
    settings=PartnersSettings,
    app="partners.entrypoints.app:create_app",
    service_dir=Path(__file__).resolve().parents[3],
    port=8001,
    outbox="partners.adapters.tables:outbox",
    topics=[TOPIC],
    # No aggregates yet: each one is listed in `aggregates` when its issue lands.
)


def main(argv: list[str] | None = None) -> None:
    COMMANDS.main(argv)
