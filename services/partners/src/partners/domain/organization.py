"""The partner organization: a foreign counterpart (academy, society, university, …) or an international
organization (no country). A duplicate found later is merged into its survivor and counts nowhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from partners.domain.base import Actor, Body, InvalidValue, NotPermitted, Versioned, WrongState, utc_now
from partners.domain.names import name_key

OrganizationKind = Literal[
    "academy",
    "society",
    "engineering_body",
    "university",
    "international_org",
    "government",
    "foundation",
    "company",
    "other",
]
ORGANIZATION_KINDS: tuple[str, ...] = get_args(OrganizationKind)
OrganizationStatus = Literal["active", "merged"]
ORGANIZATION_STATUSES: tuple[str, ...] = get_args(OrganizationStatus)
EDITABLE = ("name", "name_zh", "country", "kind", "ror_id", "website")


@dataclass
class Organization(Versioned):
    id: str
    name: str
    name_zh: str | None
    country: str | None
    kind: str
    ror_id: str | None
    website: str | None
    created_by: Body
    status: str = "active"
    merged_into: str | None = None
    version: int = 1
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    @classmethod
    def register(cls, *, id: str, by: Body, **content: Any) -> Organization:
        values: dict[str, Any] = {name: content.get(name) for name in EDITABLE}
        org = cls(id=id, created_by=by, **values)
        org._check()
        return org

    @property
    def name_keys(self) -> tuple[str, str | None]:
        """The normalised `name` and `name_zh` a duplicate would share (with the country)."""
        return name_key(self.name), name_key(self.name_zh) if self.name_zh else None

    def _check(self) -> None:
        if self.kind not in ORGANIZATION_KINDS:
            raise InvalidValue(f"unknown kind {self.kind!r}", "kind")
        if self.country is None and self.kind != "international_org":
            raise InvalidValue("only an international organization has no country", "country")

    def ensure_editable_by(self, actor: Actor) -> None:
        if not actor.may_act_for(self.created_by):
            raise NotPermitted("Only the body that registered this organization (or an admin) may change it.")
        if self.status == "merged":
            raise WrongState(f"The organization was merged into {self.merged_into}; change that one.")

    def update(self, actor: Actor, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (only the editable fields); returns the fields that really changed."""
        self.ensure_editable_by(actor)
        before = self.public_fields()
        for name, value in changes.items():
            if name not in EDITABLE:
                raise InvalidValue(f"`{name}` cannot be changed", name)
            setattr(self, name, value)
        self._check()
        changed = {k: v for k, v in self.public_fields().items() if before[k] != v}
        if changed:
            self._changed()
        return changed

    def merge_into(self, actor: Actor, survivor: Organization) -> None:
        if not actor.is_admin:
            raise NotPermitted("Only an admin may merge organizations.")
        if survivor.id == self.id:
            raise InvalidValue("an organization cannot be merged into itself", "duplicate_id")
        for org in (self, survivor):
            if org.status == "merged":
                raise WrongState(f"Organization {org.id} is already merged into {org.merged_into}.")
        self.status = "merged"
        self.merged_into = survivor.id
        self._changed()

    def public_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EDITABLE}
