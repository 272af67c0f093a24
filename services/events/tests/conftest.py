"""Fixtures for the events service: a migrated real PostgreSQL database, the app with its lifespan
(relay included) on the real broker, and helpers to build bodies and read the topic."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

from common.testing.service import AppLiveServer, RunningService, ServiceUnderTest
from events.config import EventsSettings
from events.contracts import TOPIC
from events.domain.model import EVENT_EXAMPLE
from events.entrypoints.app import create_app
from sqlalchemy import text

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def body(**overrides: Any) -> dict[str, Any]:
    """A valid event body; a fresh external_ref each call unless given."""
    return {**copy.deepcopy(EVENT_EXAMPLE), "external_ref": f"ref-{next(_counter)}", **overrides}


async def outbox_rows_written(connection: Any) -> int:
    """Outbox rows ever inserted (PostgreSQL): the relay deletes the rows it has published, so a count of
    the table says nothing about what was announced; the id sequence only moves forward."""
    last, called = (await connection.execute(text("SELECT last_value, is_called FROM outbox_id_seq"))).one()
    return int(last) if called else 0


class Service(RunningService[EventsSettings]):
    """A running app, its settings and an HTTP client bound to it."""

    async def messages(self, expected: int, timeout: float = 20.0) -> list[Any]:
        return await self.records(expected, timeout)

    async def messages_for(self, subject: str, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The messages keyed by `subject` (reads the topic until `expected` of them arrived)."""
        records = await self.records_for(subject, expected, timeout)
        return [{"key": r.key.decode(), "value": json.loads(r.value), "headers": dict(r.headers)} for r in records]


EVENTS = ServiceUnderTest("events", EventsSettings, create_app, TOPIC, SERVICE_DIR, Service)
settings_factory, service, live = EVENTS.fixtures()
migrated_database = EVENTS.migrated_database
running_service = EVENTS.running_service
EventsLiveServer = AppLiveServer[EventsSettings]
