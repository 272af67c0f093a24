"""A membership of the association or one of its bodies in an international organization."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, get_args

from partners.domain.base import Actor, Body, InvalidValue, NotPermitted, Versioned, WrongState, utc_now

MembershipStatus = Literal["active", "ended"]
MEMBERSHIP_STATUSES: tuple[str, ...] = get_args(MembershipStatus)


@dataclass
class Membership(Versioned):
    id: str
    organization_id: str
    member: Body
    since: date
    until: date | None = None
    status: str = "active"
    version: int = 1
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def end(self, actor: Actor, until: date) -> None:
        if not actor.may_act_for(self.member):
            raise NotPermitted("Only the member body (or an admin) may end this membership.")
        if self.status == "ended":
            raise WrongState(f"The membership ended on {self.until}.")
        if until < self.since:
            raise InvalidValue("must be on or after `since`", "until")
        self.until = until
        self.status = "ended"
        self._changed()

    def move_to(self, organization_id: str) -> None:
        """Its organization was merged into `organization_id`."""
        self.organization_id = organization_id
        self._changed()
