"""Version 1 of the published events. Additive changes only; a breaking change is a v2 topic.

`data` of every message is `EventState`: the event's whole public state, `version` included, exactly
as `GET /v1/events/{id}` returns it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from common.asyncapi import PublishedEvent, asyncapi_document
from pydantic import ConfigDict, Field

from events.domain.model import EventContent, Organizer, Status

TOPIC = "exchange.events.v1"
SOURCE = "/events"
EVENT_RECORDED = "exchange.event.recorded"
EVENT_UPDATED = "exchange.event.updated"
EVENT_CANCELLED = "exchange.event.cancelled"


class EventState(EventContent):
    """An exchange event as stored: the resource of the API and the `data` of every message."""

    model_config = ConfigDict(
        extra="ignore",  # a tolerant reader of our own rows; the write models forbid extras
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
                    "organizer": {"kind": "province", "code": "440000"},
                    "external_ref": "GD-2025-0042",
                    "title": "China–Germany Forum on Hydrogen Energy",
                    "type": "forum",
                    "start_date": "2025-05-10",
                    "end_date": "2025-05-12",
                    "host_country": "CN",
                    "host_province": "440000",
                    "city": "Guangzhou",
                    "participants": 320,
                    "foreign_participants": 85,
                    "papers": 64,
                    "countries": ["DE", "FR"],
                    "partner_org_ids": [],
                    "fields": ["energy"],
                    "target_groups": ["young_scientist"],
                    "flagship": False,
                    "status": "active",
                    "version": 1,
                    "created_at": "2025-05-13T08:30:00Z",
                    "updated_at": "2025-05-13T08:30:00Z",
                }
            ]
        },
    )

    id: uuid.UUID = Field(description="Assigned by the service.")
    organizer: Organizer = Field(description="The organizing body.")
    external_ref: str = Field(description="The organizer's own id of the event (unique per organizer).")
    status: Status = Field(description="`active`, or `cancelled` (a cancelled event leaves every metric).")
    version: int = Field(ge=1, description="1 when recorded, +1 per change; also the ETag.")
    created_at: datetime = Field(description="When the event was recorded (UTC).")
    updated_at: datetime = Field(description="When it last changed (UTC).")


PUBLISHED_EVENTS = [
    PublishedEvent(EVENT_RECORDED, EventState, "An exchange event was recorded (version 1)."),
    PublishedEvent(EVENT_UPDATED, EventState, "An exchange event was changed; `data` is its whole new state."),
    PublishedEvent(
        EVENT_CANCELLED, EventState, "An exchange event was cancelled (`status` = `cancelled`); drop it from metrics."
    ),
]


def asyncapi(topic: str = TOPIC) -> dict[str, Any]:
    """The AsyncAPI document of what this service publishes."""
    return asyncapi_document(title="exchange-tracker events", source=SOURCE, topic=topic, events=PUBLISHED_EVENTS)
