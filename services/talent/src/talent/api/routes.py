"""The `/v1/talent` routes: thin adapters from HTTP to the use cases."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from common.auth import CurrentPrincipal
from common.errors import (
    TOO_DEEP,
    PayloadTooLarge,
    PreconditionFailed,
    Problem,
    Unprocessable,
    language_of,
    validation_errors,
)
from common.etag import ETAG_HEADER, etag, if_match_versions
from common.i18n import DEFAULT, localize_errors
from common.openapi_types import COUNTRY
from common.pagination import PageCursor, PageLimit
from common.query import no_unknown_query
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from talent.api.schemas import (
    ANY_RECORD,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    STALE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNSUPPORTED,
    PersonPage,
    PersonView,
    PostPage,
    SyncRequest,
    SyncResponse,
)
from talent.application.ports import PersonFilter, PostFilter
from talent.application.use_cases import BadRecord, TalentService
from talent.contracts.v1 import GroupName, RoleName
from talent.domain.model import MAX_SYNC_RECORDS, Mode

# Unknown query parameters are 422 (common.query), on every route here.
router = APIRouter(prefix="/v1/talent", tags=["talent"], dependencies=[Depends(no_unknown_query)])

NDJSON = "application/x-ndjson"
MAX_LINE_BYTES = 256 * 1024  # one record of a stream; a record within the contract's bounds is far smaller
SYNC_PATH = "/v1/talent/sync"

PersonId = Annotated[uuid.UUID, Path(description="The person's id.")]
Society = Annotated[str | None, Query(description="A society's code.", max_length=32, pattern=r"^[A-Za-z0-9_-]{1,32}$")]
# A posts cursor holds a position besides the person's id: 18 bytes, 24 characters.
PostCursor = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9_-]{24}$", description="`next_cursor` of the previous page (24 characters)."),
]


def _service(request: Request) -> TalentService:
    service: TalentService = request.app.state.talent
    return service


_SYNC_DESCRIPTION = """Create, update, leave unchanged or remove the token's society's people (`talent:sync`;
hq with `admin` names `society`).

Each record is validated on its own: the invalid ones are answered in `rejected` with their errors (in
Chinese with `Accept-Language: zh`) and the rest are synced. A record is compared with the stored person by
a hash of its content: `unchanged` ones are not written and publish nothing, so the same sync sent twice
changes nothing the second time. `deleted: true` erases a person. In `full` mode the society's people the
request does not name are removed (erased) as well — a rejected record that names its `external_id` still
counts as named. `dry_run: true` answers exactly what
the sync would do and changes nothing.

**Two bodies.** `application/json`: `{"mode", "records", "dry_run", "society"}` with at most 10,000 records
(more → 413). `application/x-ndjson`: one record per line, unlimited in number (each line at most 256 KiB),
with `mode`, `dry_run` and `society` as query parameters. A stream is committed in chunks of 2,000 records as
they arrive; the answer (200 only once everything is committed) sums them up. In `full` mode people are
removed only after the whole stream has arrived: a stream that breaks off keeps its committed chunks and
removes nobody, and sending it again completes it.

**One sync per society at a time.** A sync holds its society's lock (a PostgreSQL advisory lock) from its
first record to its answer: a second sync, or an erasure, of the same society waits for it, so two syncs never
interleave. Syncs of different societies run side by side."""


@router.post(
    "/sync",
    summary="Sync a society's talent pool",
    description=_SYNC_DESCRIPTION,
    response_model=SyncResponse,
    responses={**UNAUTHORIZED, **FORBIDDEN, **TOO_LARGE, **UNSUPPORTED, **INVALID},
    openapi_extra={
        "parameters": [
            {
                "name": "mode",
                "in": "query",
                "required": False,
                "description": "For an `application/x-ndjson` body: `delta` (default) or `full`; checked (422) but "
                "not used with a JSON body, which states its own.",
                "schema": {"type": "string", "enum": ["delta", "full"]},
            },
            {
                "name": "dry_run",
                "in": "query",
                "required": False,
                "description": "For an `application/x-ndjson` body: answer, change nothing; checked (422) but not "
                "used with a JSON body.",
                "schema": {"type": "boolean"},
            },
            {
                "name": "society",
                "in": "query",
                "required": False,
                "description": "For an `application/x-ndjson` body sent by hq with admin; checked (422) but not used "
                "with a JSON body.",
                "schema": {"type": "string", "maxLength": 32, "pattern": r"^[A-Za-z0-9_-]{1,32}$"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SyncRequest"}},
                NDJSON: {
                    # one line's schema: a line that is not a valid record is answered in `rejected`
                    "schema": ANY_RECORD,
                    "description": "One PersonRecord per line.",
                },
            },
        },
    },
)
async def sync(principal: CurrentPrincipal, request: Request) -> JSONResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    service = _service(request)
    mode, dry_run, society = _stream_options(request)  # checked whatever the body (a JSON body ignores them)
    if media == NDJSON:
        result = await service.sync(
            actor=principal, society=society, mode=mode, records=_lines(request), dry_run=dry_run
        )
    elif media in ("application/json", ""):
        body = _sync_body(await request.body())
        result = await service.sync(
            actor=principal, society=body.society, mode=body.mode, records=body.records, dry_run=body.dry_run
        )
    else:
        raise Problem("Send the records as application/json or application/x-ndjson.", status=415)
    answer = result.as_dict()
    if answer["rejected"] and (lang := language_of(request)) != DEFAULT:  # in the caller's language
        for rejection in answer["rejected"]:
            rejection["errors"] = localize_errors(rejection["errors"], lang)
    return JSONResponse(answer)


def _sync_body(raw: bytes) -> SyncRequest:
    try:
        document = json.loads(raw)
    except RecursionError as exc:
        raise Unprocessable(TOO_DEEP, errors=[{"loc": ["body"], "msg": "nested too deeply"}]) from exc
    except ValueError as exc:
        raise Unprocessable("The body is not valid JSON.", errors=[{"loc": ["body"], "msg": "not JSON"}]) from exc
    records = document.get("records") if isinstance(document, dict) else None
    if isinstance(records, list) and len(records) > MAX_SYNC_RECORDS:
        raise PayloadTooLarge(
            f"A JSON sync holds at most {MAX_SYNC_RECORDS} records; this one has {len(records)}. "
            "Stream larger pools as application/x-ndjson."
        )
    try:
        return SyncRequest.model_validate(document)
    except ValidationError as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in validation_errors(exc.errors())]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        raise Unprocessable(detail or "The request is not valid.", errors=errors) from exc


def _stream_options(request: Request) -> tuple[Mode, bool, str | None]:
    query = request.query_params
    mode = query.get("mode", "delta")
    dry_run = query.get("dry_run", "false").lower()
    society = query.get("society")
    errors = []
    if mode not in ("delta", "full"):
        errors.append({"loc": ["query", "mode"], "msg": "must be `delta` or `full`"})
    if dry_run not in ("true", "false", "1", "0"):
        errors.append({"loc": ["query", "dry_run"], "msg": "must be true or false"})
    if society is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", society):
        errors.append({"loc": ["query", "society"], "msg": "not a society code"})
    if errors:
        raise Unprocessable("Invalid stream options.", errors=errors)
    return mode, dry_run in ("true", "1"), society  # type: ignore[return-value]


async def _lines(request: Request) -> AsyncIterator[Any]:
    """The stream's records as they arrive, one per line (blank lines skipped); a line that is not a
    JSON object, or longer than `MAX_LINE_BYTES`, becomes a `BadRecord` (rejected alone)."""
    pending = bytearray()
    too_long = False
    async for chunk in _received(request):
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                if len(pending) > MAX_LINE_BYTES:
                    too_long = True
                    pending.clear()
                break
            line = bytes(pending[:end])
            del pending[: end + 1]
            if too_long:
                too_long = False
                yield BadRecord(f"a record is at most {MAX_LINE_BYTES} bytes")
            elif line.strip():
                yield _record(line)
    if too_long:
        yield BadRecord(f"a record is at most {MAX_LINE_BYTES} bytes")
    elif pending.strip():
        yield _record(bytes(pending))


async def _received(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:  # what was committed stays; the current chunk is rolled back
        raise Problem("The stream broke off before its end; send it again to complete it.", status=400) from exc


def _record(line: bytes) -> Any:
    try:
        value = json.loads(line)
    except RecursionError:
        return BadRecord("nested too deeply")
    except ValueError:
        return BadRecord("not a JSON object")
    return value if isinstance(value, dict) else BadRecord("not a JSON object")


@router.get(
    "/persons",
    summary="List people in the talent pools",
    response_model=PersonPage,
    responses={**UNAUTHORIZED, **INVALID},
)
async def list_persons(
    principal: CurrentPrincipal,
    request: Request,
    group: Annotated[GroupName | None, Query(description="People in this pool.")] = None,
    society: Society = None,
    country: Annotated[
        str | None, Query(description="Country of residence (ISO 3166-1 alpha-2, either case).", pattern=COUNTRY)
    ] = None,
    reserve: Annotated[bool | None, Query(description="In the reserve pool for international posts.")] = None,
    has_post: Annotated[bool | None, Query(description="Holding (or having held) a post.")] = None,
    organization: Annotated[
        str | None,
        Query(description="Holding a post in this organization.", min_length=1, max_length=300, pattern=r"^[^\x00]+$"),
    ] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> JSONResponse:
    """People not erased, in id order. Personal fields are shown only to `talent:sync` of the person's
    own society and to hq with admin; every other reader gets each person's public shape."""
    where = PersonFilter(
        society=society,
        group=group,
        country=country.upper() if country else None,
        reserve=reserve,
        has_post=has_post,
        organization=organization,
    )
    items, next_cursor = await _service(request).list_persons(reader=principal, where=where, limit=limit, cursor=cursor)
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/persons/{person_id}",
    summary="Read a person",
    response_model=PersonView,
    responses={200: {"headers": ETAG_HEADER}, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
)
async def get_person(person_id: PersonId, principal: CurrentPrincipal, request: Request) -> JSONResponse:
    """One person (an erased one reads as `deleted: true` with nothing else). Personal fields as in the list."""
    state = await _service(request).get(reader=principal, person_id=person_id)
    return JSONResponse(state, headers=etag(state["version"]))


@router.delete(
    "/persons/{person_id}",
    summary="Erase a person",
    response_model=PersonView,
    responses={200: {"headers": ETAG_HEADER}, **UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND, **STALE, **INVALID},
)
async def erase_person(
    person_id: PersonId,
    principal: CurrentPrincipal,
    request: Request,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description='The version you read (`"3"`); 412 when stale. Optional.')
    ] = None,
) -> JSONResponse:
    """Erase one of your society's people (`talent:sync`, or hq with admin): every personal field is
    deleted (not flagged), `exchange.person.removed` is published, and the audit record notes the erasure
    without the data. Erasing again changes nothing. The same `external_id` synced later is a new person."""
    service = _service(request)
    versions = if_match_versions(if_match)
    if versions is not None:
        current = await service.get(reader=principal, person_id=person_id)
        if current["version"] not in versions:
            raise PreconditionFailed(
                f"The person is at version {current['version']}; If-Match names another.",
                current_version=current["version"],
            )
    person = await service.erase(actor=principal, person_id=person_id)
    state = person.public_state()
    return JSONResponse(state, headers=etag(state["version"]))


@router.get(
    "/posts",
    summary="Posts in international organizations",
    response_model=PostPage,
    responses={**UNAUTHORIZED, **INVALID},
)
async def list_posts(
    principal: CurrentPrincipal,
    request: Request,
    role: Annotated[RoleName | None, Query(description="The post's level.")] = None,
    organization: Annotated[
        str | None, Query(description="The organization.", min_length=1, max_length=300, pattern=r"^[^\x00]+$")
    ] = None,
    society: Society = None,
    limit: PageLimit = 50,
    cursor: PostCursor = None,
) -> JSONResponse:
    """Who holds which post: every post of the people in the pools (public: no names), any valid token."""
    posts, next_cursor = await _service(request).list_posts(
        where=PostFilter(society=society, role=role, organization=organization), limit=limit, cursor=cursor
    )
    items = [
        {
            "person_id": p.person_id,
            "society": p.society,
            "organization": p.organization,
            "organization_country": p.organization_country,
            "role": p.role,
            "start_date": p.start_date.isoformat(),
            "end_date": p.end_date.isoformat() if p.end_date else None,
        }
        for p in posts
    ]
    return JSONResponse({"items": items, "next_cursor": next_cursor})
