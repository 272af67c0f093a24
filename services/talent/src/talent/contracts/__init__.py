"""What the talent service publishes (version 1 of `exchange.talent.v1`)."""

from talent.contracts.v1 import (
    PERSON_REMOVED,
    PERSON_UPSERTED,
    PUBLISHED_EVENTS,
    SOURCE,
    TOPIC,
    VOCABULARY,
    PersonPublic,
    asyncapi,
)

__all__ = [
    "PERSON_REMOVED",
    "PERSON_UPSERTED",
    "PUBLISHED_EVENTS",
    "SOURCE",
    "TOPIC",
    "VOCABULARY",
    "PersonPublic",
    "asyncapi",
]
