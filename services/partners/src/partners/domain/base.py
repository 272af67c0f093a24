"""What the aggregates share: the acting body, the domain's errors, and the version rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

BodyKind = Literal["province", "society", "hq"]


@dataclass(frozen=True)
class Body:
    """A body of the association (a province, a national society or HQ), as `{kind, code}`."""

    kind: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "code": self.code}


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the body the token names, and whether it may act for any body."""

    body: Body
    is_admin: bool = False

    def may_act_for(self, body: Body) -> bool:
        return self.is_admin or self.body == body


class DomainError(Exception):
    """A rule of the domain refused a change."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidValue(DomainError):
    """A value breaks a rule (422)."""


class NotPermitted(DomainError):
    """The actor may not make this change (403)."""


class WrongState(DomainError):
    """The aggregate's state does not allow this change (409)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Versioned:
    """+1 per change: every aggregate's `version` moves only through `_changed`."""

    version: int
    updated_at: datetime

    def _changed(self, at: datetime | None = None) -> None:
        self.version += 1
        self.updated_at = at or utc_now()
