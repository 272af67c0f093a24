"""The events this service publishes (version 1 of `exchange.events.v1`)."""

from events.contracts.v1 import (
    EVENT_CANCELLED,
    EVENT_RECORDED,
    EVENT_UPDATED,
    PUBLISHED_EVENTS,
    SOURCE,
    TOPIC,
    EventState,
    asyncapi,
)

__all__ = [
    "EVENT_CANCELLED",
    "EVENT_RECORDED",
    "EVENT_UPDATED",
    "PUBLISHED_EVENTS",
    "SOURCE",
    "TOPIC",
    "EventState",
    "asyncapi",
]
