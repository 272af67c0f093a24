"""`partners migrate | serve | relay | republish`."""

from __future__ import annotations

from common.service import ServiceCommands

from partners.config import PartnersSettings
from partners.contracts import TOPIC

# No aggregates yet: each is listed in `aggregates` when its issue lands.
COMMANDS = ServiceCommands(
    "partners", PartnersSettings, port=8001, outbox="partners.adapters.tables:outbox", topics=[TOPIC]
)


def main(argv: list[str] | None = None) -> None:
    COMMANDS.main(argv)
