"""The reporting API: regions, metrics, targets, bodies, the live stream and the annual report.

Every read needs a token with `reporting:read` (or HQ `admin`). The stream also accepts the token as
`?access_token=` because the browser's EventSource cannot send headers: the dashboard exchanges the
pasted token for a short-lived stream-only one at `POST /v1/dashboard/session` and puts only that one in
the URL (the access log shows the parameter redacted, common.observability).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from common.auth import Principal, mint_stream_token, optional_bearer_token, require_scope, verify_token
from common.errors import Forbidden, NotFound, Unauthorized, language_of, problem_response
from common.query import no_unknown_query
from common.regions import all_regions, is_region_code
from common.settings import association_today
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from reporting.api import reports, schemas
from reporting.read import queries
from reporting.stream.broadcaster import TooManySubscribers

READ = "reporting:read"
# Undeclared query parameters are 422 (common.query), on every route here.
router = APIRouter(prefix="/v1", tags=["reporting"], dependencies=[Depends(no_unknown_query)])

Year = Annotated[int | None, Query(ge=1900, le=2100, description="YYYY; omitted: all years")]
RegionKindQuery = Annotated[
    Literal["all", "world", "group", "province", "national"] | None, Query(description="only regions of this kind")
]
_errors = schemas.problem_responses(401, 403, 422)
STREAM_RETRY_AFTER = "5"  # seconds: a refused stream (the process has its maximum open) tries again
_not_found = schemas.problem_responses(404)
TARGET_NAMES = {
    "partners": ("Partner organizations", "合作伙伴组织"),
    "agreements": ("Agreements signed", "合作协议"),
    "people": ("People in the talent pools", "人才库人数"),
    "organizations": ("Organizations in the pool", "组织库数量"),
    "flagship_projects": ("Flagship projects", "品牌项目"),
}


def _sessions(request: Request) -> Any:
    return request.app.state.read_sessions


@router.get(
    "/regions",
    response_model=schemas.RegionList,
    responses=_errors,
    dependencies=[require_scope(READ)],
    summary="Every reporting region: all, world regions, groups, provinces, national bodies",
)
async def list_regions() -> dict[str, Any]:
    items = [{"code": r.code, "name": r.name, "name_zh": r.name_zh, "kind": r.kind} for r in all_regions()]
    return {"items": items, "next_cursor": None}


@router.get(
    "/metrics",
    response_model=schemas.MetricsList,
    responses=_errors,
    dependencies=[require_scope(READ)],
    summary="The figures of every region for a year (or all years)",
)
async def list_metrics(request: Request, year: Year = None, kind: RegionKindQuery = None) -> Response:
    async with _sessions(request)() as session:
        codes = queries.catalogue_codes(kind)
        objects = await queries.region_objects(session, None if kind is None else codes, year or 0)
    return Response(json.dumps({"year": year, "regions": objects}), media_type="application/json")


@router.get(
    "/metrics/regions/{code}",
    response_model=schemas.RegionMetrics,
    responses={**_errors, **_not_found},
    dependencies=[require_scope(READ)],
    summary="The figures of one region for a year (or all years)",
)
async def region_metrics(request: Request, code: str, year: Year = None) -> Response:
    if not is_region_code(code):
        raise NotFound(f"No region has the code {code!r}; see GET /v1/regions.")
    async with _sessions(request)() as session:
        (obj,) = await queries.region_objects(session, [code], year or 0)
    return JSONResponse(obj)


@router.get(
    "/metrics/regions/{code}/trend",
    response_model=schemas.Trend,
    responses={**_errors, **_not_found},
    dependencies=[require_scope(READ)],
    summary="Events and agreements of one region per year (year-over-year trend)",
)
async def region_trend(request: Request, code: str) -> dict[str, Any]:
    if not is_region_code(code):
        raise NotFound(f"No region has the code {code!r}; see GET /v1/regions.")
    async with _sessions(request)() as session:
        return {"region": code, "years": await queries.year_trend(session, code)}


@router.get(
    "/targets",
    response_model=schemas.Targets,
    responses=_errors,
    dependencies=[require_scope(READ)],
    summary="Plan targets and progress (configurable with REPORTING_TARGETS)",
)
async def targets(request: Request, year: Year = None) -> dict[str, Any]:
    settings = request.app.state.settings
    now = datetime.now(UTC)
    async with queries.one_snapshot(_sessions(request)) as session:  # two statements, one generation
        (overall,) = await queries.region_objects(session, ["all"], year or 0)
        partners = await queries.partner_organizations(session, year or 0, association_today())
    values = {
        "partners": partners,
        "agreements": overall["partners"]["agreements_signed"],
        "people": overall["talent"]["persons"],
        "organizations": overall["partners"]["organizations"],
        "flagship_projects": overall["events"]["flagship"] + overall["partners"]["flagship_agreements"],
    }
    items = []
    for key, target in settings.targets.items():
        name, name_zh = TARGET_NAMES.get(key, (key, key))
        value = values.get(key, 0)
        items.append(
            {
                "key": key,
                "name": name,
                "name_zh": name_zh,
                "target": target,
                "value": value,
                "progress": round(value / target, 4) if target else 0.0,
            }
        )
    return {"year": year, "as_of": now, "targets": items}


@router.get(
    "/bodies",
    response_model=schemas.BodyList,
    responses=_errors,
    dependencies=[require_scope(READ)],
    summary="Every province and every body seen, with the year's counts; flags provinces with nothing",
)
async def list_bodies(
    request: Request, year: Annotated[int | None, Query(ge=1900, le=2100, description="default: this year")] = None
) -> dict[str, Any]:
    year = year or datetime.now(UTC).year
    async with queries.one_snapshot(_sessions(request)) as session:  # two statements, one generation
        return {"year": year, "items": await queries.body_rows(session, year), "next_cursor": None}


@router.get(
    "/reports/annual",
    responses={
        **_errors,
        200: {
            "description": "The year's table, every region a row",
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        },
    },
    response_class=Response,
    dependencies=[require_scope(READ)],
    summary="The annual report as CSV or XLSX (Chinese and English headers)",
)
async def annual_report(
    request: Request,
    year: Annotated[int | None, Query(ge=1900, le=2100, description="default: this year")] = None,
    format: Literal["csv", "xlsx"] = "csv",
) -> Response:
    year = year or datetime.now(UTC).year
    async with _sessions(request)() as session:
        objects = await queries.region_objects(session, None, year)
    filename = f"exchange-report-{year}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "xlsx":
        return Response(
            reports.to_xlsx(objects, year),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=disposition,
        )
    return Response(reports.to_csv(objects), media_type="text/csv; charset=utf-8", headers=disposition)


async def stream_principal(
    request: Request,
    access_token: Annotated[
        str | None, Query(description="for EventSource: a token from /v1/dashboard/session")
    ] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    raw = optional_bearer_token(authorization) or access_token
    if not raw:
        raise Unauthorized("An `Authorization: Bearer <JWT>` header or an `access_token` parameter is required.")
    principal = await verify_token(raw, request.app.state.auth, "stream")
    if not principal.has(READ):
        raise Forbidden(f"The token lacks the `{READ}` scope.")
    return principal


@router.get(
    "/metrics/stream",
    responses={
        **_errors,
        **schemas.problem_responses(503),
        200: {"description": "`event: metrics`, data = a region's figures", "content": {"text/event-stream": {}}},
    },
    response_class=Response,
    summary="Server-Sent Events: one message per region whose figures changed (coalesced, resumable)",
)
async def metrics_stream(
    request: Request,
    _principal: Annotated[Principal, Depends(stream_principal)],
    year: Year = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    last_event_id_query: Annotated[
        str | None,
        Query(alias="last_event_id", max_length=40, description="as the Last-Event-ID header, for a new EventSource"),
    ] = None,
) -> Response:
    broadcaster = request.app.state.broadcaster
    settings = request.app.state.settings
    try:
        subscription = await broadcaster.subscribe(year or 0, last_event_id or last_event_id_query)
    except TooManySubscribers as exc:
        return problem_response(
            503, f"{exc} Try again later.", headers={"Retry-After": STREAM_RETRY_AFTER}, lang=language_of(request)
        )

    async def messages() -> AsyncIterator[ServerSentEvent | bytes]:
        try:
            yield ServerSentEvent(comment="connected", retry=1000)
            if subscription.backlog:
                yield b"".join(m.encoded for m in subscription.backlog)
            while True:
                message = await subscription.queue.get()
                frames = [message]
                while message is not None and not subscription.queue.empty():  # one write for a whole flush
                    message = subscription.queue.get_nowait()
                    frames.append(message)
                ready = [m.encoded for m in frames if m is not None]
                if ready:
                    yield b"".join(ready)
                if message is None:
                    return
        finally:
            broadcaster.unsubscribe(subscription)

    return EventSourceResponse(
        messages(),
        ping=settings.stream_heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/dashboard/session",
    response_model=schemas.DashboardSession,
    responses=_errors,
    summary="Exchange a reporting token for a short-lived token that opens the stream only (?access_token=)",
)
async def dashboard_session(request: Request, principal: Annotated[Principal, require_scope(READ)]) -> dict[str, Any]:
    """The token lasts `REPORTING_DASHBOARD_TOKEN_TTL_SECONDS` (10 minutes), never longer than the token
    it was exchanged for; it opens `GET /v1/metrics/stream` and is refused everywhere else, this route
    included, so it cannot renew itself."""
    ttl = request.app.state.settings.dashboard_token_ttl_seconds
    token, lifetime = mint_stream_token(request.app.state.auth, principal, scope=READ, ttl=ttl)
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": READ}
