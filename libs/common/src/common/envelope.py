"""The CloudEvents 1.0 envelope of the contract (JSON structured mode): the model consumers validate a
message with and the AsyncAPI schema is made from. Producers make their messages with
`common.outbox.outbox_message`, the one builder."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/cloudevents+json"


class CloudEventFields(BaseModel):
    """The CloudEvents 1.0 attributes of the contract, without `data`: a consumer may extend it with a
    typed `data` and validate a message in one pass from its bytes."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00]+$",
        description="Unique per message; consumers de-duplicate by it.",
    )
    source: str = Field(min_length=1, description="`/partners`, `/events` or `/talent`.")
    type: str = Field(min_length=1, description="e.g. `exchange.event.recorded`.")
    subject: str = Field(min_length=1, description="The aggregate id; also the Kafka key.")
    time: datetime
    datacontenttype: str = "application/json"


class CloudEvent(CloudEventFields):
    """A CloudEvents 1.0 message; `data` is the aggregate's whole public state with its version."""

    model_config = ConfigDict(extra="allow")

    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


def envelope_schema(event_type: str, data_model: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema of the envelope for one event type, with `data` typed by the producer's model."""
    schema = CloudEvent.model_json_schema()
    data_schema = data_model.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**schema.get("$defs", {}), **data_schema.pop("$defs", {})}
    schema["properties"]["type"] = {"const": event_type, "type": "string"}
    schema["properties"]["data"] = data_schema
    if defs:
        schema["$defs"] = defs
    schema["title"] = event_type
    return schema
