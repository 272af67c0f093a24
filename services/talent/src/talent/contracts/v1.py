"""Version 1 of what the talent service publishes on `exchange.talent.v1`. Additive changes only.

This model is the published contract, kept apart from the domain on purpose: it has no personal field
at all (no name, e-mail, affiliation, birth year, ORCID …), so nothing personal can reach the topic by
accident. A test holds the domain's public state and this model equal.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any, Literal

from common.asyncapi import PublishedEvent, asyncapi_document, vocabulary_sections
from pydantic import BaseModel, ConfigDict, Field

TOPIC = "exchange.talent.v1"
SOURCE = "/talent"
PERSON_UPSERTED = "exchange.person.upserted"
PERSON_REMOVED = "exchange.person.removed"

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.json")
# The groups and post roles with their zh/en labels: the data file this service publishes beside its
# AsyncAPI document, from which consumers (reporting) label their figures.
# Only its sections: the file also says what it is (`$comment`, `service`, `topic`).
VOCABULARY = vocabulary_sections(VOCABULARY_FILE)

GroupName = Literal["leading_scientist", "engineer", "young_scientist", "woman_scientist", "youth", "overseas_expert"]
RoleName = Literal[
    "president", "vice_president", "executive_board", "secretary_general", "committee_chair", "member", "other"
]

_EXAMPLE_POST = {
    "organization": "World Federation of Engineering Organizations",
    "organization_country": "FR",
    "role": "executive_board",
    "start_date": "2023-10-01",
    "end_date": None,
}
PERSON_EXAMPLE: dict[str, Any] = {
    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
    "version": 1,
    "society": "CMES",
    "groups": ["engineer", "woman_scientist"],
    "country": "CN",
    "province": "110000",
    "reserve": True,
    "posts": [_EXAMPLE_POST],
    "deleted": False,
}
REMOVED_EXAMPLE: dict[str, Any] = {
    "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
    "version": 2,
    "society": "CMES",
    "groups": [],
    "country": None,
    "province": None,
    "reserve": False,
    "posts": [],
    "deleted": True,
}


class PublishedPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization: str = Field(max_length=300, description="The international organization.")
    organization_country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2, or null.")
    role: RoleName
    start_date: date
    end_date: date | None = None


class PersonPublic(BaseModel):
    """A person's public state: the `data` of every talent message and what any reader may see."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PERSON_EXAMPLE, REMOVED_EXAMPLE]})

    id: uuid.UUID = Field(description="Assigned by the service.")
    version: int = Field(ge=1, le=10**12, description="1 when created, +1 per change (erasure included).")
    society: str = Field(max_length=32, description="The national society whose pool holds the person.")
    groups: list[GroupName] = Field(max_length=6, description="The pools; empty once erased.")
    country: str | None = Field(
        max_length=2, description="Country of residence (ISO 3166-1 alpha-2); null once erased."
    )
    province: str | None = Field(max_length=6, description="GB/T 2260 provincial code when in China.")
    reserve: bool = Field(description="In the reserve pool for international posts.")
    posts: list[PublishedPost] = Field(max_length=50, description="Posts in international organizations (≤ 50).")
    deleted: bool = Field(description="True once erased (`exchange.person.removed`): the person counts nowhere.")


PUBLISHED_EVENTS = [
    PublishedEvent(
        PERSON_UPSERTED, PersonPublic, "A person was added to a pool or changed; `data` is the whole public state."
    ),
    PublishedEvent(
        PERSON_REMOVED,
        PersonPublic,
        "A person was erased (`deleted: true`, nothing but id, society and version left): drop them from every figure.",
    ),
]


def asyncapi(topic: str = TOPIC) -> dict[str, Any]:
    document = asyncapi_document(title="exchange-tracker talent", source=SOURCE, topic=topic, events=PUBLISHED_EVENTS)
    document["info"]["x-vocabulary"] = VOCABULARY
    return document
