"""The `Event` aggregate: an exchange event's state and the rules of how it changes.

Its state is the event's public state, JSON-ready, exactly as the API returns it and a message
carries it (`contracts.v1.EventState`): the aggregate is a thin owner of that dict, so the bulk paths
(1,000 events per batch) pay for no second representation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.domain.model import CONTENT_FIELDS

Key = tuple[str, str, str]  # organizer kind, organizer code, external_ref


class EventCancelled(Exception):
    """A cancelled event cannot change."""

    def __init__(self, event_id: str) -> None:
        super().__init__("A cancelled event cannot be changed.")
        self.event_id = event_id


class Event:
    __slots__ = ("state",)

    def __init__(self, state: dict[str, Any]) -> None:
        """An event as stored (`state`: its whole public state, JSON-ready)."""
        self.state = state

    @classmethod
    def record(cls, *, event_id: str, key: Key, content: Mapping[str, Any], stamp: str) -> Event:
        """A new event: active, version 1. `content` is canonical (`EventContent.canonical()`), `stamp`
        the ISO time of creation."""
        return cls(
            {
                "id": event_id,
                "organizer": {"kind": key[0], "code": key[1]},
                "external_ref": key[2],
                **content,
                "status": "active",
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )

    @property
    def id(self) -> str:
        return str(self.state["id"])

    @property
    def key(self) -> Key:
        organizer = self.state["organizer"]
        return organizer["kind"], organizer["code"], self.state["external_ref"]

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def version(self) -> int:
        return int(self.state["version"])

    def content(self) -> dict[str, Any]:
        """The client-supplied content (what idempotency compares and a change replaces)."""
        return {name: self.state[name] for name in CONTENT_FIELDS}

    def check_changeable(self) -> None:
        """Raise `EventCancelled` if the event may not change any more."""
        if self.status == "cancelled":
            raise EventCancelled(self.id)

    def change(self, content: Mapping[str, Any], stamp: str) -> bool:
        """Replace the content (canonical, validated); False when it is the same (no new version)."""
        self.check_changeable()
        if dict(content) == self.content():
            return False
        self.state = {**self.state, **content, "version": self.version + 1, "updated_at": stamp}
        return True

    def cancel(self, stamp: str) -> bool:
        """Cancel the event; False when it was cancelled already (cancelling twice changes nothing)."""
        if self.status == "cancelled":
            return False
        self.state = {**self.state, "status": "cancelled", "version": self.version + 1, "updated_at": stamp}
        return True
