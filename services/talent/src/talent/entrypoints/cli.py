"""`talent migrate | serve | relay | republish`."""

from __future__ import annotations

from common.service import ServiceCommands

from talent.config import TalentSettings
from talent.contracts import TOPIC

# No aggregates yet: each is listed in `aggregates` when its issue lands.
COMMANDS = ServiceCommands("talent", TalentSettings, port=8003, outbox="talent.adapters.tables:outbox", topics=[TOPIC])


def main(argv: list[str] | None = None) -> None:
    COMMANDS.main(argv)
