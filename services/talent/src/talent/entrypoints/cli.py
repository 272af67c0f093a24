"""`talent migrate | serve | relay | republish`."""

from __future__ import annotations

from pathlib import Path

from common.service import ServiceCommands

from talent.config import TalentSettings
from talent.contracts import TOPIC

COMMANDS = ServiceCommands(
    name="talent",
    settings=TalentSettings,
    app="talent.entrypoints.app:create_app",
    service_dir=Path(__file__).resolve().parents[3],
    port=8003,
    outbox="talent.adapters.tables:outbox",
    topics=[TOPIC],
    # No aggregates yet: each one is listed in `aggregates` when its issue lands.
)


def main(argv: list[str] | None = None) -> None:
    COMMANDS.main(argv)
