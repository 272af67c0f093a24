"""What the partners service publishes (version 1 of `exchange.partners.v1`)."""

from partners.contracts.v1 import PUBLISHED_EVENTS, SOURCE, TOPIC, asyncapi

__all__ = ["PUBLISHED_EVENTS", "SOURCE", "TOPIC", "asyncapi"]
