"""The event catalogue and the envelope's JSON Schema, generated from the published models."""

from __future__ import annotations

import jsonschema
from common.asyncapi import PublishedEvent, asyncapi_document, vocabulary_sections
from common.envelope import envelope_schema
from common.testing.messages import cloud_event
from pydantic import BaseModel


class Recorded(BaseModel):
    id: str
    version: int


def test_envelope_schema_validates_a_real_event_and_rejects_a_wrong_type():
    schema = envelope_schema("exchange.thing.recorded", Recorded)
    good = cloud_event(source="/t", type="exchange.thing.recorded", subject="1", data={"id": "1", "version": 2})
    jsonschema.validate(good.model_dump(mode="json"), schema)
    bad = {**good.model_dump(mode="json"), "type": "exchange.thing.other"}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a message of another type passed the schema")


def test_asyncapi_document_has_one_message_per_type():
    document = asyncapi_document(
        title="t",
        source="/t",
        topic="exchange.things.v1",
        events=[
            PublishedEvent("exchange.thing.recorded", Recorded, "recorded"),
            PublishedEvent("exchange.thing.removed", Recorded, "removed"),
        ],
    )
    assert document["asyncapi"].startswith("3.")
    assert document["channels"]["exchange_things_v1"]["address"] == "exchange.things.v1"
    assert set(document["components"]["messages"]) == {"thing_recorded", "thing_removed"}


def test_vocabulary_sections_keep_the_labelled_values_and_leave_out_what_says_what_the_file_is(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text(
        '{"$comment": "what it is", "service": "x", "topic": "exchange.x.v1", '
        '"kinds": {"academy": {"zh": "科学院", "en": "Academy"}}, "roles": {}}',
        encoding="utf-8",
    )
    assert vocabulary_sections(path) == {"kinds": {"academy": {"zh": "科学院", "en": "Academy"}}, "roles": {}}
