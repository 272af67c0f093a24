"""What `talent republish` writes again: every person's current public state, as the message of their
last change (an erased person as a removal: the erasure reaches a consumer that missed it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.republish import Published, RepublishedAggregate

from talent.adapters.sql_store import person_of
from talent.adapters.tables import persons
from talent.contracts import PERSON_REMOVED, PERSON_UPSERTED, SOURCE, TOPIC


def published(row: Mapping[str, Any]) -> Published:
    person = person_of(row)
    kind = PERSON_REMOVED if person.deleted else PERSON_UPSERTED
    return Published(kind, person.id, person.public_state())


AGGREGATES = [RepublishedAggregate(name="persons", table=persons, topic=TOPIC, source=SOURCE, published=published)]
