"""What `events republish` writes again: every event's current state, as the message of its last change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.envelope import CloudEvent, new_event
from common.republish import RepublishedAggregate

from events.adapters.repository import event_of
from events.adapters.tables import events
from events.contracts import EVENT_CANCELLED, EVENT_RECORDED, EVENT_UPDATED, SOURCE, TOPIC


def message_of(row: Mapping[str, Any]) -> CloudEvent:
    """The message a consumer would have seen last for this row: same whole state, same version."""
    state = event_of(row).state
    if state["status"] == "cancelled":
        event_type = EVENT_CANCELLED
    elif state["version"] == 1:
        event_type = EVENT_RECORDED
    else:
        event_type = EVENT_UPDATED
    return new_event(source=SOURCE, type=event_type, subject=state["id"], data=state)


AGGREGATES = [RepublishedAggregate(name="events", table=events, topic=TOPIC, message_of=message_of)]
