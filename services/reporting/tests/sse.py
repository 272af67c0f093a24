"""A small Server-Sent-Events reader over httpx for the tests and the benchmarks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Message:
    event: str | None
    id: str | None
    data: str | None
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data or "null")


async def read_events(response: httpx.Response) -> AsyncIterator[Message]:
    event = id_ = None
    data: list[str] = []
    comment = None
    async for line in response.aiter_lines():
        if line == "":
            if data or comment is not None:
                yield Message(event, id_, "\n".join(data) if data else None, comment)
            event = id_ = comment = None
            data = []
            continue
        if line.startswith(":"):
            comment = line[1:].strip()
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            id_ = value
