"""Request and response shapes of the HTTP API beyond the domain models (lists, batch, problems)."""

from __future__ import annotations

from typing import Any, Literal

import common.problems
from pydantic import BaseModel, ConfigDict, Field

from events.contracts import EventState
from events.domain.model import MAX_BATCH, EventCreate

Responses = dict[int | str, dict[str, Any]]


class ProblemDetails(common.problems.ProblemDetails):
    """An RFC 9457 problem (`application/problem+json`)."""

    existing_id: str | None = Field(default=None, description="For 409: the id of the existing event.")
    current_version: int | None = Field(default=None, description="For 412: the event's current version.")


def problem(status: int, description: str, example_detail: str, **extra: Any) -> dict[str, Any]:
    titles = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        412: "Precondition failed",
    }
    titles |= {413: "Payload too large", 422: "Validation failed"}
    example = {
        "type": f"https://exchange-tracker.dev/problems/{status}",
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": example_detail,
        **extra,
    }
    return common.problems.problem_response(description, example)


UNPARSEABLE: Responses = {
    400: problem(400, "The body could not be read at all (e.g. not UTF-8)", "There was an error parsing the body")
}
UNAUTHORIZED: Responses = {401: problem(401, "Missing, expired or invalid token", "The token has expired.")}
FORBIDDEN: Responses = {
    403: problem(403, "Wrong scope, or another body's event", "The token lacks the `events:write` scope.")
}
NOT_FOUND: Responses = {404: problem(404, "No such event", "There is no event 0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b.")}
INVALID: Responses = {
    422: problem(
        422,
        "The request is not valid; `errors` names every invalid field",
        "body.end_date: Value error, must be on or after start_date",
        errors=[{"loc": ["body", "end_date"], "msg": "Value error, must be on or after start_date"}],
    )
}
TOO_LARGE: Responses = {
    413: problem(413, "The body is over the size limit, or a batch has over 1,000 items", "A batch …")
}
CONFLICT: Responses = {
    409: problem(
        409,
        "The external_ref already names an event with different content (or the event is cancelled)",
        "external_ref 'GD-2025-0042' already names another event with different content.",
        existing_id="0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
    )
}
STALE: Responses = {
    412: problem(
        412, "`If-Match` names an older version", "The event is at version 3, not 2; read it again.", current_version=3
    )
}


class EventPage(BaseModel):
    """One page of events in id (creation) order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [EventState.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                    "next_cursor": "AZOlsnwefUqbPyocXm96iw",
                }
            ]
        }
    )

    items: list[EventState] = Field(description="The events of this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def _any_item(schema: dict[str, Any]) -> None:
    """Any item is taken: one that is not a valid event is answered `rejected`, with its errors, and the
    others are recorded (one bad item does not reject the batch)."""
    events = schema["properties"]["events"]
    events["items"] = {
        "anyOf": [events["items"], {"description": "Anything else: answered `rejected`, with its errors."}]
    }


class BatchRequest(BaseModel):
    """Up to 1,000 events; each is validated on its own. The route reads the body itself (item by
    item when some are invalid), so the limit is its check (413), not the schema's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_any_item)

    events: list[EventCreate] = Field(
        json_schema_extra={"maxItems": MAX_BATCH},
        description="The events to record (at most 1,000; more → 413). Each item is validated on its own: an "
        "invalid one is answered `rejected` and the others are still recorded.",
    )


class BatchItemError(BaseModel):
    loc: list[str] = Field(description='Where the problem is, e.g. `["events", "3", "end_date"]`.')
    msg: str = Field(description="What is wrong.")


class BatchItem(BaseModel):
    """The outcome of one item, in request order."""

    external_ref: str | None = Field(description="The item's external_ref (null when it had none).")
    status: Literal["created", "unchanged", "conflict", "rejected"] = Field(
        description="`created` (new, published), `unchanged` (posted before with the same content: nothing "
        "published), `conflict` (the external_ref names an event with different content; `id` is that event), "
        "`rejected` (invalid or not allowed; see `errors`)."
    )
    id: str | None = Field(default=None, description="The event's id (created, unchanged or conflicting).")
    errors: list[BatchItemError] | None = Field(default=None, description="Why the item was not recorded.")


class BatchResponse(BaseModel):
    """Per-item results and totals."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "external_ref": "GD-2025-0042",
                            "status": "created",
                            "id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
                        },
                        {
                            "external_ref": "GD-2025-0043",
                            "status": "rejected",
                            "errors": [{"loc": ["events", "1", "end_date"], "msg": "must be on or after start_date"}],
                        },
                    ],
                    "created": 1,
                    "unchanged": 0,
                    "conflict": 0,
                    "rejected": 1,
                }
            ]
        }
    )

    items: list[BatchItem] = Field(description="One result per submitted item, in order.")
    created: int = Field(description="How many were recorded now.")
    unchanged: int = Field(description="How many had been recorded before with the same content.")
    conflict: int = Field(description="How many clash with an existing event's content.")
    rejected: int = Field(description="How many were invalid or not allowed.")
