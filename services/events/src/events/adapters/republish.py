"""What `events republish` writes again: every event's current state, as the message of its last change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.republish import Published, RepublishedAggregate

from events.adapters.repository import event_of
from events.adapters.tables import events
from events.contracts import EVENT_CANCELLED, EVENT_RECORDED, EVENT_UPDATED, SOURCE, TOPIC


def published(row: Mapping[str, Any]) -> Published:
    """What a consumer would have seen last for this row: same whole state, same version."""
    state = event_of(row).state
    if state["status"] == "cancelled":
        event_type = EVENT_CANCELLED
    elif state["version"] == 1:
        event_type = EVENT_RECORDED
    else:
        event_type = EVENT_UPDATED
    return Published(event_type, state["id"], state)


AGGREGATES = [RepublishedAggregate(name="events", table=events, topic=TOPIC, source=SOURCE, published=published)]
