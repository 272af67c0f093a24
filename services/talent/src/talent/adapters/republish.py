"""What `talent republish` writes again: every person's current public state, as the message of their
last change (an erased person as a removal: the erasure reaches a consumer that missed it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.envelope import CloudEvent, new_event
from common.republish import RepublishedAggregate

from talent.adapters.sql_store import person_of
from talent.adapters.tables import persons
from talent.contracts import PERSON_REMOVED, PERSON_UPSERTED, SOURCE, TOPIC


def message_of(row: Mapping[str, Any]) -> CloudEvent:
    person = person_of(row)
    kind = PERSON_REMOVED if person.deleted else PERSON_UPSERTED
    return new_event(source=SOURCE, type=kind, subject=person.id, data=person.public_state())


AGGREGATES = [RepublishedAggregate(name="persons", table=persons, topic=TOPIC, message_of=message_of)]
