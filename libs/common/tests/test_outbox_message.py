"""`common.outbox.outbox_message`, the one builder of a message: what it writes is the contract's CloudEvent
(every attribute, as `common.envelope.CloudEvent` validates and writes it), keyed and headed for Kafka, and a
message over the bound is refused before anything is written. No broker, no database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from common.envelope import CONTENT_TYPE, CloudEvent, CloudEventFields
from common.ids import new_message_id
from common.observability import new_traceparent, traceparent_var
from common.outbox import MessageTooLarge, OutboxMessage, cloudevent_time, message_headers, outbox_message
from common.republish import Published, RepublishedAggregate, republished_messages
from sqlalchemy import Column, Integer, MetaData, Table

DATA = {"id": "0190f1e2-0000-7000-8000-000000000001", "version": 3, "title": "论坛 Forum", "countries": ["DE"]}


def _written(message: OutboxMessage) -> dict[str, object]:
    return dict(json.loads(message.payload))


def test_what_it_writes_is_the_contracts_cloudevent_with_every_attribute() -> None:
    message = outbox_message(source="/events", type="exchange.event.recorded", subject=DATA["id"], data=DATA)
    written = _written(message)
    # Every attribute the contract's model declares, and nothing else: an attribute added to the model
    # and not to the builder (or the other way round) fails here.
    assert set(written) == set(CloudEventFields.model_fields) | {"data"}
    event = CloudEvent.model_validate_json(message.payload)
    assert event.model_extra == {}
    assert (event.specversion, event.source, event.type, event.subject) == (
        "1.0",
        "/events",
        "exchange.event.recorded",
        DATA["id"],
    )
    assert event.datacontenttype == "application/json"
    assert event.data == DATA
    assert uuid.UUID(event.id).version == 7 and message.event_id == event.id
    assert event.time.tzinfo is not None and event.time.utcoffset() == UTC.utcoffset(None)
    assert str(written["time"]).endswith("Z")  # RFC 3339 in UTC, as the model writes it
    # The model writes back the same message: a consumer re-serialising it changes nothing.
    assert json.loads(event.to_bytes()) == written
    assert message.key == event.subject  # the Kafka key is the aggregate id


def test_its_headers_name_the_content_type_the_event_type_and_the_trace() -> None:
    plain = outbox_message(source="/t", type="exchange.t.recorded", subject="a", data={"version": 1})
    assert json.loads(plain.headers) == {"content-type": CONTENT_TYPE, "ce_type": "exchange.t.recorded"}
    traceparent = new_traceparent(None)
    token = traceparent_var.set(traceparent)
    try:
        traced = outbox_message(source="/t", type="exchange.t.recorded", subject="a", data={"version": 1})
    finally:
        traceparent_var.reset(token)
    assert json.loads(traced.headers)["traceparent"] == traceparent


def test_a_batch_passes_its_id_time_and_headers_and_they_are_written_as_given() -> None:
    now = datetime(2026, 5, 10, 8, 30, 0, 125000, tzinfo=UTC)
    message_id, time, headers = new_message_id(), cloudevent_time(now), message_headers("exchange.t.updated")
    message = outbox_message(
        source="/t",
        type="exchange.t.updated",
        subject="a",
        data={"version": 2},
        headers=headers,
        message_id=message_id,
        time=time,
    )
    event = CloudEvent.model_validate_json(message.payload)
    assert (message.event_id, event.id, event.time, message.headers) == (message_id, message_id, now, headers)
    assert _written(message)["time"] == "2026-05-10T08:30:00.125000Z"


def test_a_message_over_the_bound_is_refused_naming_its_largest_field() -> None:
    data = {"version": 1, "title": "t", "notes": "x" * 2000}
    with pytest.raises(MessageTooLarge) as refused:
        outbox_message(source="/t", type="exchange.t.recorded", subject="a", data=data, max_message_bytes=1024)
    assert refused.value.status == 422 and refused.value.field == "notes"
    assert outbox_message(source="/t", type="exchange.t.recorded", subject="a", data=data, max_message_bytes=4096)


def test_a_republished_batch_is_made_by_the_same_builder_with_one_time_and_headers_per_type() -> None:
    table = Table("things", MetaData(), Column("id", Integer, primary_key=True))

    def published(row: Mapping[str, Any]) -> Published:
        kind = "exchange.thing.removed" if row["gone"] else "exchange.thing.recorded"
        return Published(kind, str(row["id"]), {"id": str(row["id"]), "version": row["version"]})

    aggregate = RepublishedAggregate(name="things", table=table, topic="t", source="/things", published=published)
    rows = [{"id": n, "version": n, "gone": n == 2} for n in (1, 2, 3)]
    messages = republished_messages(aggregate, rows)
    events = [CloudEvent.model_validate_json(m.payload) for m in messages]
    assert [e.type for e in events] == ["exchange.thing.recorded", "exchange.thing.removed", "exchange.thing.recorded"]
    assert [e.subject for e in events] == [m.key for m in messages] == ["1", "2", "3"]
    assert {e.source for e in events} == {"/things"} and len({e.time for e in events}) == 1
    assert len({m.event_id for m in messages}) == 3
    assert [m.headers for m in messages] == [message_headers(e.type) for e in events]
    written = outbox_message(
        source="/things",
        type=events[0].type,
        subject="1",
        data={"id": "1", "version": 1},
        message_id=messages[0].event_id,
        time=str(_written(messages[0])["time"]),
    )
    assert messages[0] == written  # the same bytes a write of that row makes
