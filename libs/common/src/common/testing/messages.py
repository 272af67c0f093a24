"""Messages for tests, made as every producer makes them (`common.outbox.outbox_message`, the one
builder) and read back as a consumer reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from common.envelope import CloudEvent
from common.outbox import outbox_message


def cloud_event(*, source: str, type: str, subject: str, data: Mapping[str, Any]) -> CloudEvent:
    """The message a producer would publish for this change, as a consumer validates it."""
    return CloudEvent.model_validate_json(outbox_message(source=source, type=type, subject=subject, data=data).payload)


def envelope_shape(value: bytes, headers: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """What two messages of one aggregate at one version share, whichever path wrote them: the message,
    validated as the contract's CloudEvent, less the `id` and `time` each message has its own of (the time
    kept as its form), and its Kafka headers less the trace context (a request's, which a republish has none of)."""
    event = CloudEvent.model_validate_json(value)
    written = json.loads(value)
    return {
        "attributes": sorted(written),
        **{name: written[name] for name in written if name not in ("id", "time")},
        "time_in_utc": written["time"].endswith("Z") and event.time.utcoffset() == timedelta(0),
        "headers": {name: raw.decode() for name, raw in headers if name != "traceparent"},
    }
