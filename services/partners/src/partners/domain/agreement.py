"""The cooperation agreement and its lifecycle: signed (active), renewed (history on the same agreement),
expired by itself when `expires_on` has passed, terminated with a reason. Days are the association's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from partners.domain.base import Actor, Body, InvalidValue, NotPermitted, Versioned, WrongState, utc_now

AgreementKind = Literal["mou", "cooperation_agreement", "letter_of_intent", "minutes", "mutual_recognition"]
AGREEMENT_KINDS: tuple[str, ...] = get_args(AgreementKind)
AgreementStatus = Literal["active", "expired", "terminated"]
AGREEMENT_STATUSES: tuple[str, ...] = get_args(AgreementStatus)
# Days before expiry at which a renewal notice goes out, each once per agreement and term.
NOTICE_DAYS: tuple[int, ...] = (180, 90, 30)
CONTENT = ("title", "kind", "partner_org_ids", "signed_on", "expires_on", "fields", "flagship")
EDITABLE = ("title", "kind", "partner_org_ids", "fields", "flagship", "will_not_renew")


@dataclass
class Agreement(Versioned):
    id: str
    title: str
    kind: str
    partner_org_ids: list[str]
    signed_on: date
    signed_by: Body
    expires_on: date | None = None
    fields: list[str] = field(default_factory=list)
    flagship: bool = False
    external_ref: str | None = None
    status: str = "active"
    will_not_renew: bool = False
    renewals: list[dict[str, str]] = field(default_factory=list)
    terminated_on: date | None = None
    termination_reason: str | None = None
    document: dict[str, Any] | None = None
    term: int = 1  # +1 per renewal: notices are given once per term
    notices: set[str] = field(default_factory=set)  # "term:days" already given; not published
    version: int = 1
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    @classmethod
    def sign(cls, *, id: str, signed_by: Body, **content: Any) -> Agreement:
        agreement = cls(id=id, signed_by=signed_by, **content)
        agreement._check()
        return agreement

    def _check(self) -> None:
        if self.kind not in AGREEMENT_KINDS:
            raise InvalidValue(f"unknown kind {self.kind!r}", "kind")
        if not self.partner_org_ids:
            raise InvalidValue("at least one partner organization", "partner_org_ids")
        if self.expires_on is not None and self.expires_on <= self.signed_on:
            raise InvalidValue("must be after signed_on", "expires_on")

    def content(self) -> dict[str, Any]:
        """What its signer sent: two creates with one `external_ref` are the same when this is."""
        values = {name: getattr(self, name) for name in CONTENT}
        values["partner_org_ids"] = sorted(values["partner_org_ids"])
        values["fields"] = sorted(values["fields"])
        return values

    def ensure_changeable_by(self, actor: Actor) -> None:
        if not actor.may_act_for(self.signed_by):
            raise NotPermitted("Only the body that signed this agreement (or an admin) may change it.")

    def _ensure_not_terminated(self) -> None:
        if self.status == "terminated":
            raise WrongState(f"The agreement was terminated on {self.terminated_on}.")

    def update(self, actor: Actor, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply some of the editable fields; returns {field: new value} of those that really changed."""
        self.ensure_changeable_by(actor)
        self._ensure_not_terminated()
        before = {name: getattr(self, name) for name in EDITABLE}
        for name, value in changes.items():
            if name not in EDITABLE:
                raise InvalidValue(f"`{name}` cannot be changed here", name)
            setattr(self, name, value)
        self._check()
        changed = {name: getattr(self, name) for name in EDITABLE if before[name] != getattr(self, name)}
        if changed:
            self._changed()
        return changed

    def renew(self, actor: Actor, expires_on: date, today: date) -> None:
        """Extend the term; an expired agreement is in force again. Renewing is a decision: it clears
        `will_not_renew`, and the new term gets its own notices."""
        self.ensure_changeable_by(actor)
        self._ensure_not_terminated()
        if self.expires_on is None:
            raise InvalidValue("the agreement has no expiry to extend", "expires_on")
        if expires_on <= self.expires_on:
            raise InvalidValue(f"must be after the current expiry, {self.expires_on}", "expires_on")
        if expires_on < today:
            raise InvalidValue(f"must be today ({today}) or later", "expires_on")
        self.renewals.append(
            {
                "renewed_on": today.isoformat(),
                "previous_expires_on": self.expires_on.isoformat(),
                "expires_on": expires_on.isoformat(),
            }
        )
        self.expires_on = expires_on
        self.status = "active"
        self.will_not_renew = False
        self.term += 1
        self._changed()

    def terminate(self, actor: Actor, reason: str, today: date) -> None:
        self.ensure_changeable_by(actor)
        self._ensure_not_terminated()
        if not reason.strip():
            raise InvalidValue("a reason is required", "reason")
        self.status = "terminated"
        self.terminated_on = today
        self.termination_reason = reason
        self._changed()

    def expire(self, today: date) -> bool:
        """Expired once its last day (`expires_on`) is over; True when that happened now."""
        if self.status != "active" or self.expires_on is None or self.expires_on >= today:
            return False
        self.status = "expired"
        self._changed()
        return True

    def due_notice(self, today: date) -> int | None:
        """The renewal notice due today (180, 90 or 30 days), if not given this term; marks it given,
        with the wider windows (an agreement signed or renewed inside a window gets that window's notice,
        not the wider ones'). The version does not move: nothing public changed."""
        if self.status != "active" or self.will_not_renew or self.expires_on is None:
            return None
        days_left = (self.expires_on - today).days
        if days_left < 0:
            return None
        window = min((d for d in NOTICE_DAYS if days_left <= d), default=None)
        if window is None or f"{self.term}:{window}" in self.notices:
            return None
        self.notices |= {f"{self.term}:{d}" for d in NOTICE_DAYS if d >= window}
        return window

    @property
    def next_check_on(self) -> date | None:
        """The first day something is due: the widest notice not yet given this term, or the expiry
        (the day after `expires_on`). None when nothing ever will be (not active, or open-ended)."""
        if self.status != "active" or self.expires_on is None:
            return None
        expiry = self.expires_on + timedelta(days=1)
        if self.will_not_renew:
            return expiry
        pending = [d for d in NOTICE_DAYS if f"{self.term}:{d}" not in self.notices]
        return min(self.expires_on - timedelta(days=max(pending)), expiry) if pending else expiry

    def replace_partner(self, old: str, new: str) -> bool:
        """A merged organization's place taken by its survivor (once, order kept)."""
        if old not in self.partner_org_ids:
            return False
        ids: list[str] = []
        for org_id in self.partner_org_ids:
            org_id = new if org_id == old else org_id
            if org_id not in ids:
                ids.append(org_id)
        self.partner_org_ids = ids
        self._changed()
        return True

    def attach_document(self, actor: Actor, document: dict[str, Any]) -> None:
        self.ensure_changeable_by(actor)
        self.document = document
        self._changed()
