"""From a message on one of the three topics to a `Change` of one aggregate (pure).

A message is validated in one pass from its bytes: the envelope's `type` picks the model of its `data`
(a discriminated union), so no intermediate dictionary of the whole state is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from common.envelope import CloudEvent, CloudEventFields
from common.kafka.consumer import Decoded, InvalidMessage
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from reporting.contracts.inbound import AgreementState, EventState, OrganizationState, PersonState, Removal
from reporting.projections.event_facts import EventFacts, event_facts

KINDS = ("event", "organization", "agreement", "person")
# The message types of the aggregates reporting projects begin so: a type of theirs it does not know (a
# producer's newer one) is dead-lettered, never skipped as processed, so it waits to be replayed.
PROJECTED_FAMILIES = tuple(f"exchange.{kind}." for kind in KINDS)
MAX_MESSAGE_BYTES = 256 * 1024  # the contract: a published message stays under 256 KiB


class _Typed(CloudEventFields):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _EventMessage(_Typed):
    type: Literal["exchange.event.recorded", "exchange.event.updated", "exchange.event.cancelled"]
    data: EventState


class _OrganizationMessage(_Typed):
    type: Literal["exchange.organization.registered", "exchange.organization.updated", "exchange.organization.merged"]
    data: OrganizationState


class _AgreementMessage(_Typed):
    type: Literal[
        "exchange.agreement.signed",
        "exchange.agreement.renewed",
        "exchange.agreement.expired",
        "exchange.agreement.terminated",
        "exchange.agreement.updated",
        # A renewal notice: the whole state at an unchanged version (the last message of its key after
        # compaction, so a rebuild reads it as the agreement's state).
        "exchange.agreement.expiring",
    ]
    data: AgreementState


class _PersonMessage(_Typed):
    type: Literal["exchange.person.upserted"]
    data: PersonState


class _RemovalMessage(_Typed):
    type: Literal["exchange.person.removed"]
    data: Removal


_Message = _EventMessage | _OrganizationMessage | _AgreementMessage | _PersonMessage | _RemovalMessage
_MESSAGE = TypeAdapter[_Message](Annotated[_Message, Field(discriminator="type")])
_KIND: dict[type[BaseModel], str] = {
    EventState: "event",
    OrganizationState: "organization",
    AgreementState: "agreement",
    PersonState: "person",
    Removal: "person",
}


@dataclass(slots=True)  # not frozen: built once per message, and frozen __init__ is slower
class Change:
    """One aggregate's whole state at `version` (state None: the aggregate left every metric). Never
    mutated."""

    kind: str
    id: str
    version: int
    at: datetime
    state: BaseModel | None
    body: tuple[str, str] | None = None
    facts: EventFacts | None = None  # events only: their contribution in the fast path's terms


def decode_message(raw: bytes) -> Decoded:
    """(message id, Change or None). None for the types of aggregates reporting does not project
    (memberships): skipped. InvalidMessage (dead-lettered): an unknown type of an aggregate it projects
    (`PROJECTED_FAMILIES`: a producer's newer type, replayed once reporting reads it), or data that cannot
    be attributed or is out of the contract's bounds. ValidationError: the envelope is invalid."""
    if len(raw) >= MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"message of {len(raw)} bytes: the contract's limit is {MAX_MESSAGE_BYTES}")
    try:
        message = _MESSAGE.validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "union_tag_invalid" for e in errors):
            envelope = CloudEvent.from_bytes(raw)  # a valid envelope of another type
            if envelope.type.startswith(PROJECTED_FAMILIES):
                raise InvalidMessage(f"{envelope.type}: reporting does not project this type yet") from exc
            return Decoded(envelope.id, None)
        if all(len(e["loc"]) > 1 and e["loc"][1] == "data" for e in errors):
            # Its text must not quote the data (it reaches logs and DLQ headers); the cause's locations do.
            raise InvalidMessage(f"{errors[0]['loc'][0]}: the data does not match its event type") from exc
        raise
    return Decoded(message.id, _change(message))


def decode_change(envelope: CloudEvent) -> Change | None:
    """The same for an envelope already parsed (tests, tools)."""
    return decode_message(envelope.to_bytes()).value  # type: ignore[no-any-return]


def _change(message: _Message) -> Change:
    state = message.data
    aggregate_id = state.id or message.subject
    if state.id is None and (len(aggregate_id) > 64 or "\x00" in aggregate_id):  # `data.id` is bounded itself
        raise InvalidMessage("aggregate id longer than 64 characters or holding NUL")
    kind = _KIND[type(state)]
    body: tuple[str, str] | None
    if isinstance(state, EventState):
        if message.type == "exchange.event.cancelled" and state.status != "cancelled":
            state = state.model_copy(update={"status": "cancelled"})
        body = (state.organizer.kind, state.organizer.code)
        return Change(kind, aggregate_id, state.version, message.time, state, body, event_facts(state))
    if isinstance(state, AgreementState):
        signer = state.signer
        body = (signer.kind, signer.code) if signer else None
        return Change(kind, aggregate_id, state.version, message.time, state, body)
    if isinstance(state, Removal):
        body = ("society", state.society) if state.society else None
        return Change(kind, aggregate_id, state.version, message.time, None, body)
    if isinstance(state, PersonState):
        body = ("society", state.society) if state.society else None
        return Change(kind, aggregate_id, state.version, message.time, state, body)
    return Change(kind, aggregate_id, state.version, message.time, state)
