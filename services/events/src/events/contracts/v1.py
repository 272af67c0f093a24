"""Version 1 of the published events. Additive changes only; a breaking change is a v2 topic.

`data` of every message is `EventState`: the event's whole public state, `version` included, exactly
as `GET /v1/events/{id}` returns it.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from importlib import resources
from typing import Any, Literal

from common.asyncapi import PublishedEvent, asyncapi_document
from pydantic import BaseModel, ConfigDict, Field

TOPIC = "exchange.events.v1"
SOURCE = "/events"
EVENT_RECORDED = "exchange.event.recorded"
EVENT_UPDATED = "exchange.event.updated"
EVENT_CANCELLED = "exchange.event.cancelled"


# The published shape is declared here, apart from the domain's models, so that a change of the domain
# cannot change the contract unnoticed: tests/unit/test_contract_model.py compares the two field by field.
EventType = Literal[
    "conference",
    "forum",
    "dialogue",
    "delegation_in",
    "delegation_out",
    "youth_camp",
    "exhibition",
    "training",
    "online",
    "other",
]


class Organizer(BaseModel):
    """The body that organises the event: a provincial association, a national society or HQ."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["province", "society", "hq"] = Field(description="`province`, `society` or `hq`.")
    code: str = Field(description="GB/T 2260 code for a province (`440000`), the society's code (`CMES`), or `HQ`.")


class EventState(BaseModel):
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

    title: str = Field(min_length=1, max_length=500, description="Title of the event.")
    type: EventType = Field(description="Kind of event.")
    start_date: date = Field(description="First day (ISO 8601).")
    end_date: date = Field(description="Last day, on or after `start_date`.")
    host_country: str = Field(default="CN", description="ISO 3166-1 alpha-2 code of the venue's country.")
    host_province: str | None = Field(
        default=None, description="GB/T 2260 provincial-level code of the venue (venues in China; none for `online`)."
    )
    city: str | None = Field(default=None, description="City of the venue.")
    participants: int = Field(default=0, ge=0, description="Number of participants.")
    foreign_participants: int = Field(default=0, ge=0, description="Participants from abroad (0 … `participants`).")
    papers: int = Field(default=0, ge=0, description="Papers exchanged.")
    countries: list[str] = Field(
        default_factory=list,
        description="Partner countries represented (ISO 3166-1 alpha-2, never `CN`), upper-case, sorted, unique.",
    )
    partner_org_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Ids of partner organizations (from the partners service) that took part."
    )
    fields: list[str] = Field(default_factory=list, description="Fields of science or cooperation.")
    target_groups: list[str] = Field(
        default_factory=list, description="Groups addressed, e.g. `young_scientist`, `woman_scientist`."
    )
    flagship: bool = Field(default=False, description="Whether this is a flagship exchange project.")
    id: uuid.UUID = Field(description="Assigned by the service.")
    organizer: Organizer = Field(description="The organizing body.")
    external_ref: str = Field(description="The organizer's own id of the event (unique per organizer).")
    status: Literal["active", "cancelled"] = Field(
        description="`active`, or `cancelled` (a cancelled event leaves every metric)."
    )
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
    """The AsyncAPI document of what this service publishes, with its vocabulary (`x-vocabulary`: the event
    types and their labels) for consumers to check their copies against."""
    document = asyncapi_document(title="exchange-tracker events", source=SOURCE, topic=topic, events=PUBLISHED_EVENTS)
    document["info"]["x-vocabulary"] = vocabulary()
    return document


def vocabulary() -> dict[str, Any]:
    """This service's published vocabulary (`contracts/vocabulary.json`)."""
    loaded: dict[str, Any] = json.loads(
        resources.files("events.contracts").joinpath("vocabulary.json").read_text("utf-8")
    )
    return loaded
