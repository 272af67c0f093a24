"""The `/v1/events` routes: thin adapters from HTTP to the use cases."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import date
from typing import Annotated, Any

from common.auth import Principal
from common.errors import TOO_DEEP, PayloadTooLarge, Unprocessable, detail_of, language_of, validation_errors
from common.etag import ETAG_HEADER, etag, if_match_versions
from common.i18n import DEFAULT, localize_errors
from common.pagination import PageCursor, PageLimit
from common.query import no_unknown_query
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator, ValidationError, WithJsonSchema
from pydantic_core import to_json
from starlette.convertors import StringConvertor, register_url_convertor

from events.api.auth import Authenticated, Writer, writer_of
from events.api.schemas import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    STALE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNPARSEABLE,
    BatchRequest,
    BatchResponse,
    EventPage,
)
from events.application.ports import Actor, EventFilter
from events.application.use_cases import EventsService, ItemResult
from events.contracts import EventState
from events.domain.model import COUNTRY, MAX_BATCH, EventCreate, EventPatch, EventType, explain
from events.domain.plain_batch import decode_plain_batch


class _EventIdSegment(StringConvertor):
    """Any path segment but `batch` and `audit`: `PATCH /v1/events/batch` is then a method `/batch` does
    not serve (405 with `Allow: POST`), not an event id that is not a UUID (422, as for any other such
    segment); `GET /v1/events/audit` reaches the audit record whichever router is mounted first."""

    regex = r"(?!(?:batch|audit)$)[^/]+"


register_url_convertor("event_id", _EventIdSegment())

# Unknown query parameters are 422 (common.query), on every route here.
router = APIRouter(prefix="/v1/events", tags=["events"], dependencies=[Depends(no_unknown_query)])

EventId = Annotated[uuid.UUID, Path(description="The event's id.")]
# An entity tag (`"3"`, `W/"3"`, quotes optional) or a list of them, or `*`.
_TAG = r'(?:W/)?"?\d{1,9}"?'
IF_MATCH = rf"^\s*(?:\*|{_TAG}(?:\s*,\s*{_TAG})*)\s*$"
IfMatch = Annotated[
    str | None,
    # Optional means absent: the document shows no `null` (a client would send it as the text "null").
    WithJsonSchema({"type": "string", "pattern": IF_MATCH}),
    Header(
        alias="If-Match",
        pattern=IF_MATCH,
        description='The version you read, as its ETag (`"3"`), or `*`; several ETags may be listed, separated by '
        "commas. 412 when the event has changed since; 422 when it is not in this form. Optional.",
    ),
]


def _iso_day(value: Any) -> Any:
    # pydantic would also read a timestamp (`0` is 1970-01-01); the document says a date: YYYY-MM-DD.
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
_STATE_EXAMPLE = EventState.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
_CREATE_EXAMPLE = EventCreate.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]


def _service(request: Request) -> EventsService:
    service: EventsService = request.app.state.events
    return service


def _actor(principal: Principal) -> Actor:
    return Actor(principal.org_kind, principal.org_code, principal.is_admin, principal.sub)


class FastJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core's encoder (several times faster than `json.dumps` on our
    resources; the same JSON, compact)."""

    def render(self, content: Any) -> bytes:
        return to_json(content)


def _resource(state: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return FastJSONResponse(state, status_code=status_code, headers=etag(state["version"]))


def _state_response(description: str, *, with_etag: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "model": EventState,
        "content": {"application/json": {"example": _STATE_EXAMPLE}},
    }
    if with_etag:
        answer["headers"] = ETAG_HEADER
    return answer


@router.post(
    "",
    summary="Record an event",
    status_code=201,
    response_model=EventState,
    responses={
        201: {"description": "Recorded and published", "headers": ETAG_HEADER},
        200: _state_response("Posted before with the same content: the existing event; nothing published"),
        **UNPARSEABLE,
        **UNAUTHORIZED,
        **FORBIDDEN,
        **CONFLICT,
        **TOO_LARGE,
        **INVALID,
    },
    openapi_extra={
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/EventCreate"},
                    "examples": {"forum": {"value": _CREATE_EXAMPLE}},
                }
            },
        },
    },
)
async def record_event(request: Request) -> Response:
    """Record an exchange event for the token's body (idempotent by `external_ref`).

    `hq` with `admin` may record for another body by naming `organizer`.
    """
    # The hot path (bench/events/README.md): no FastAPI dependencies (the token is checked by
    # `writer_of`, the same rules as `Writer`, documented through `security` above), and the body
    # parsed and validated in one step by pydantic's JSON parser; errors read as FastAPI's would.
    principal = await writer_of(request)
    try:
        draft = EventCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _invalid_body(exc) from exc
    recorded = await _service(request).record_event(actor=_actor(principal), draft=draft)
    response = _resource(recorded.state, 201 if recorded.created else 200)
    response.headers["Location"] = f"/v1/events/{recorded.state['id']}"
    return response


def _invalid_body(exc: ValidationError) -> Unprocessable:
    # typed: the answer says each message in the caller's language by pydantic's error type
    errors = [{**e, "loc": ["body", *e["loc"]]} for e in validation_errors(explain(exc.errors()), typed=True)]
    return Unprocessable(detail_of(errors), errors=errors)


@router.post(
    "/batch",
    summary="Record up to 1,000 events",
    response_model=BatchResponse,
    responses={**UNAUTHORIZED, **FORBIDDEN, **TOO_LARGE, **INVALID},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/BatchRequest"},
                    "example": {"events": [_CREATE_EXAMPLE]},
                }
            },
        }
    },
)
async def record_batch(principal: Writer, request: Request) -> JSONResponse:
    """Record many events at once: per-item results, in order; one bad item never rejects the others.

    Items already recorded with the same content answer `unchanged`, so a batch can be resent safely.
    """
    raw = await request.body()
    service, actor = _service(request), _actor(principal)
    # The common case, every item plainly valid: decoded by msgspec as the models would give it.
    drafts = decode_plain_batch(raw)
    if drafts is not None:
        results = await service.record_drafts(actor=actor, drafts=drafts)
    else:
        results = await _record_validated(service, actor, raw)
    counts = Counter(r.status for r in results)
    body: dict[str, Any] = {"items": [r.as_dict() for r in results]}
    for status in ("created", "unchanged", "conflict", "rejected"):
        body[status] = counts[status]
    if (counts["rejected"] or counts["conflict"]) and (lang := language_of(request)) != DEFAULT:
        for item in body["items"]:
            if item.get("errors"):
                item["errors"] = localize_errors(item["errors"], lang)
    return FastJSONResponse(body)


async def _record_validated(service: EventsService, actor: Actor, raw: bytes) -> list[ItemResult]:
    """A batch validated by the models: in one call of pydantic-core when every item is valid, else
    item by item, so one bad item never rejects the others and each answer names its own problem."""
    try:
        events = BatchRequest.model_validate_json(raw).events
    except ValidationError:
        return await service.record_batch(actor=actor, items=_batch_items(raw))
    if len(events) > MAX_BATCH:
        raise PayloadTooLarge(f"A batch holds at most {MAX_BATCH} events; this one has {len(events)}.")
    return await service.record_drafts(actor=actor, drafts=[event.json_ready() for event in events])


def _batch_items(raw: bytes) -> list[Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or an integer over Python's 4,300 digits
        raise Unprocessable("The body is not valid JSON.", errors=[{"loc": ["body"], "msg": str(exc)}]) from exc
    except RecursionError as exc:  # a few KB of brackets are enough
        raise Unprocessable(TOO_DEEP, errors=[{"loc": ["body"], "msg": "nested too deeply"}]) from exc
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise Unprocessable(
            "The body must be an object with an `events` list.",
            errors=[{"loc": ["body", "events"], "msg": "a list of events is required"}],
        )
    if extra := sorted(set(body) - {"events"}):
        raise Unprocessable(
            "Unknown fields in the body.", errors=[{"loc": ["body", k], "msg": "unknown field"} for k in extra]
        )
    items: list[Any] = body["events"]
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(f"A batch holds at most {MAX_BATCH} events; this one has {len(items)}.")
    return items


@router.get(
    "",
    summary="List events",
    response_model=EventPage,
    responses={**UNAUTHORIZED, **INVALID},
)
async def list_events(
    principal: Authenticated,
    request: Request,
    organizer: Annotated[
        str | None,
        Query(
            description="The organizing body: `province:440000`, `society:CMES`, `hq:HQ`, or just the code.",
            max_length=50,
            pattern=r"^(?:(?:province|society|hq):)?[A-Za-z0-9_-]{1,32}$",
        ),
    ] = None,
    host_province: Annotated[
        str | None, Query(description="GB/T 2260 provincial code of the venue.", pattern=r"^\d{6}$")
    ] = None,
    country: Annotated[
        str | None,
        Query(description="A partner country (ISO 3166-1 alpha-2, either case) in `countries`.", pattern=COUNTRY),
    ] = None,
    type: Annotated[EventType | None, Query(description="Kind of event.")] = None,
    from_: Annotated[Day | None, Query(alias="from", description="Events starting on or after this day.")] = None,
    to: Annotated[Day | None, Query(description="Events starting on or before this day.")] = None,
    status: Annotated[
        str | None, Query(description="`active` or `cancelled`; both when omitted.", pattern=r"^(active|cancelled)$")
    ] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> JSONResponse:
    """Events in creation order, filtered; any valid token may read."""
    kind: str | None = None
    code: str | None = None
    if organizer is not None:
        kind, _, code = organizer.rpartition(":")
        kind = kind or None
    where = EventFilter(
        organizer_kind=kind,
        organizer_code=code,
        host_province=host_province,
        country=country.upper() if country else None,
        type=type,
        start_from=from_,
        start_to=to,
        status=status,
    )
    try:
        items, next_cursor = await _service(request).list_events(where, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise Unprocessable("Invalid cursor.", errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]) from exc
    return FastJSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/{event_id:event_id}",
    summary="Read an event",
    response_model=EventState,
    responses={200: {"headers": ETAG_HEADER}, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
)
async def get_event(event_id: EventId, principal: Authenticated, request: Request) -> JSONResponse:
    """One event, cancelled ones included; `ETag` is its version."""
    return _resource(await _service(request).get_event(event_id))


@router.patch(
    "/{event_id:event_id}",
    summary="Change an event",
    response_model=EventState,
    responses={
        200: {"headers": ETAG_HEADER},
        **UNPARSEABLE,
        **UNAUTHORIZED,
        **FORBIDDEN,
        **NOT_FOUND,
        **CONFLICT,
        **STALE,
        **TOO_LARGE,
        **INVALID,
    },
)
async def update_event(
    event_id: EventId,
    body: EventPatch,
    principal: Writer,
    request: Request,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Change some fields of one of your events; the result must be a valid event. Publishes
    `exchange.event.updated` when something changed."""
    state = await _service(request).update_event(
        actor=_actor(principal), event_id=event_id, patch=body, if_match=if_match_versions(if_match)
    )
    return _resource(state)


@router.delete(
    "/{event_id:event_id}",
    summary="Cancel an event",
    response_model=EventState,
    responses={200: {"headers": ETAG_HEADER}, **UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND, **STALE, **INVALID},
)
async def cancel_event(
    event_id: EventId, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """Cancel one of your events: it stays readable with status `cancelled` (`GET` keeps answering 200: a
    cancellation is a change of state, not a removal), leaves every metric, and
    `exchange.event.cancelled` is published. Cancelling again changes nothing."""
    state = await _service(request).cancel_event(
        actor=_actor(principal), event_id=event_id, if_match=if_match_versions(if_match)
    )
    return _resource(state)
