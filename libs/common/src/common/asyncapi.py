"""The event catalogue as an AsyncAPI 3 document, generated from the published event models."""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from common.envelope import CONTENT_TYPE, envelope_schema

Vocabulary = dict[str, dict[str, dict[str, str]]]


def vocabulary_sections(path: Path) -> Vocabulary:
    """The sections of a service's vocabulary file (each value with its zh/en labels), which it publishes
    beside its AsyncAPI document; the file's other keys (`$comment`, `service`, `topic`) say what it is."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return {name: section for name, section in document.items() if isinstance(section, dict)}


@dataclass(frozen=True)
class PublishedEvent:
    type: str
    data_model: builtins.type[BaseModel]
    summary: str


def asyncapi_document(
    *, title: str, source: str, topic: str, events: list[PublishedEvent], version: str = "1.0.0"
) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for event in events:
        name = event.type.removeprefix("exchange.").replace(".", "_")
        messages[name] = {
            "name": event.type,
            "title": event.type,
            "summary": event.summary,
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                    "ce_type": {"type": "string", "const": event.type},
                },
            },
            "bindings": {"kafka": {"key": {"type": "string", "description": "The aggregate id"}}},
            "payload": envelope_schema(event.type, event.data_model),
        }
    channel = topic.replace(".", "_")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": f"Events published by {source} (CloudEvents 1.0, JSON structured mode), "
            "at least once, in order per aggregate.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {
            channel: {
                "address": topic,
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": {
            f"publish_{channel}": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
            }
        },
        "components": {"messages": messages},
    }
