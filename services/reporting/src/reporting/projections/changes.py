"""From a CloudEvent on one of the three topics to a `Change` of one aggregate (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.envelope import CloudEvent
from common.kafka.consumer import InvalidMessage
from pydantic import BaseModel, ValidationError
from reporting.contracts.inbound import AgreementState, EventState, OrganizationState, PersonState, Removal
from reporting.projections.event_facts import EventFacts, event_facts

KINDS = ("event", "organization", "agreement", "person")

_MODELS: dict[str, tuple[str, type[BaseModel]]] = {
    "exchange.event.recorded": ("event", EventState),
    "exchange.event.updated": ("event", EventState),
    "exchange.event.cancelled": ("event", EventState),
    "exchange.organization.registered": ("organization", OrganizationState),
    "exchange.organization.updated": ("organization", OrganizationState),
    "exchange.agreement.signed": ("agreement", AgreementState),
    "exchange.agreement.renewed": ("agreement", AgreementState),
    "exchange.agreement.expired": ("agreement", AgreementState),
    "exchange.agreement.terminated": ("agreement", AgreementState),
    "exchange.person.upserted": ("person", PersonState),
    "exchange.person.removed": ("person", Removal),
}


@dataclass(frozen=True)
class Change:
    """One aggregate's whole state at `version` (state None: the aggregate left every metric)."""

    kind: str
    id: str
    version: int
    at: datetime
    state: BaseModel | None
    body: tuple[str, str] | None = None
    facts: EventFacts | None = None  # events only: their contribution in the fast path's terms


def decode_change(envelope: CloudEvent) -> Change | None:
    """None for types reporting does not project (memberships, future types): they are skipped, not
    dead-lettered, so producers can add event types without breaking this consumer."""
    entry = _MODELS.get(envelope.type)
    if entry is None:
        return None
    kind, model = entry
    try:
        state = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidMessage(f"{envelope.type}: {exc}") from exc
    aggregate_id = str(envelope.data.get("id") or envelope.subject)
    if len(aggregate_id) > 64:
        raise InvalidMessage("aggregate id longer than 64 characters")
    version = int(state.version)  # type: ignore[attr-defined]
    body: tuple[str, str] | None = None
    if isinstance(state, EventState):
        body = (state.organizer.kind, state.organizer.code)
        if envelope.type == "exchange.event.cancelled" and state.status != "cancelled":
            state = state.model_copy(update={"status": "cancelled"})
    elif isinstance(state, AgreementState) and state.signer:
        body = (state.signer.kind, state.signer.code)
    elif isinstance(state, (PersonState, Removal)) and state.society:
        body = ("society", state.society)
    if isinstance(state, Removal):
        return Change(kind, aggregate_id, version, envelope.time, None, body)
    if isinstance(state, EventState):
        return Change(kind, aggregate_id, version, envelope.time, state, body, event_facts(state))
    return Change(kind, aggregate_id, version, envelope.time, state, body)
