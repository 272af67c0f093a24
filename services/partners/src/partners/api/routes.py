"""The `/v1/partners` routes: thin adapters from HTTP to the use cases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from common.auth import CurrentPrincipal, Principal
from common.errors import Forbidden, Problem, Unprocessable
from common.etag import ETAG_HEADER, etag, if_match_versions
from common.openapi_types import COUNTRY
from common.pagination import PageCursor, PageLimit
from common.query import no_unknown_query
from common.regions import all_regions, countries_of_region, is_region_code
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from partners.api import schemas as s
from partners.application.ports import AgreementQuery, MembershipQuery, OrganizationQuery
from partners.application.use_cases import MAX_DOCUMENT_BYTES, Page, PartnersService
from partners.domain.agreement import AgreementKind, AgreementStatus
from partners.domain.base import Body
from partners.domain.membership import MembershipStatus
from partners.domain.organization import OrganizationKind, OrganizationStatus

# Unknown query parameters are 422 (common.query), on every route here.
router = APIRouter(prefix="/v1/partners", dependencies=[Depends(no_unknown_query)])

Id = Annotated[uuid.UUID, Path(description="The id.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match", max_length=200, description='The version you read (`"3"`); 412 when it has changed since.'
    ),
]
# The filters' codes as the document states them: the regions of `/v1/regions` that hold countries (not
# provinces or national bodies), and a body as `kind:code`.
REGIONS = [r.code for r in all_regions() if not r.code.startswith(("cn:", "body:"))]
BODY = r"^(?:province|society|hq):[^\x00-\x1f\x7f]{1,32}$"


async def _writer(principal: CurrentPrincipal) -> Principal:
    if not principal.has("partners:write"):
        raise Forbidden("The token lacks the `partners:write` scope.")
    return principal


Writer = Annotated[Principal, Depends(_writer)]
READ = s.problems(401, 422)
WRITE = s.problems(400, 401, 403, 404, 409, 412, 413, 422)


def _service(request: Request) -> PartnersService:
    service: PartnersService = request.app.state.partners
    return service


def _resource(state: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(state, status_code=status_code, headers=etag(state["version"]))


def _page(page: Page) -> dict[str, Any]:
    return {"items": page.items, "next_cursor": page.next_cursor}


def _body(value: str | None, where: str) -> Body | None:
    if value is None:
        return None
    kind, _, code = value.partition(":")
    if kind not in ("province", "society", "hq") or not code:
        raise Unprocessable(f"{where}: use `kind:code`", errors=[{"loc": ["query", where], "msg": "use kind:code"}])
    return Body(kind, code)


# -- organizations ---------------------------------------------------------------------------------
@router.post(
    "/organizations",
    tags=["organizations"],
    status_code=201,
    response_model=s.OrganizationRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE},
)
async def register_organization(body: s.OrganizationCreate, principal: Writer, request: Request) -> JSONResponse:
    """Register a partner organization (`partners:write`). The same ROR id, or the same normalised name
    (case, punctuation, legal suffixes ignored) or Chinese name and country as an active organization →
    409 with `existing_id`. Publishes `exchange.organization.registered`."""
    state = await _service(request).register_organization(principal, body.model_dump())
    return _resource(state, 201)


@router.get(
    "/organizations",
    tags=["organizations"],
    response_model=s.OrganizationPage,
    responses=READ,
)
async def list_organizations(
    principal: CurrentPrincipal,
    request: Request,
    country: Annotated[str | None, Query(pattern=COUNTRY, description="ISO 3166-1 alpha-2, either case.")] = None,
    kind: Annotated[OrganizationKind | None, Query(description="Kind of organization.")] = None,
    region: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A region code of `/v1/regions` (`m49:150`, `group:asean`); not a province's or body's.",
            json_schema_extra={"enum": REGIONS},
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=300, pattern=r"^[^\x00]+$", description="Name search, English or Chinese."),
    ] = None,
    status: Annotated[OrganizationStatus, Query(description="`active` (default) or `merged`.")] = "active",
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> dict[str, Any]:
    """Organizations in registration order, filtered; any valid token may read."""
    countries: frozenset[str] | None = None
    if region is not None and region != "all":
        if not is_region_code(region) or region.startswith(("cn:", "body:")):
            raise Unprocessable(
                "Unknown region.", errors=[{"loc": ["query", "region"], "msg": "not a world region or group"}]
            )
        countries = countries_of_region(region)
    query = OrganizationQuery(
        country=country.upper() if country else None, countries=countries, kind=kind, status=status, search=q
    )
    return _page(await _service(request).list_organizations(query, limit=limit, cursor=cursor))


@router.get(
    "/organizations/{org_id}",
    tags=["organizations"],
    response_model=s.OrganizationRead,
    responses={200: {"headers": ETAG_HEADER}, **s.problems(401, 404, 422)},
)
async def get_organization(org_id: Id, principal: CurrentPrincipal, request: Request) -> JSONResponse:
    """One organization (merged ones too, with `merged_into`); `ETag` is its version."""
    return _resource(await _service(request).get_organization(str(org_id)))


@router.patch(
    "/organizations/{org_id}",
    tags=["organizations"],
    response_model=s.OrganizationRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE},
)
async def update_organization(
    org_id: Id, body: s.OrganizationUpdate, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """Change an organization (the body that registered it, or an admin). Publishes
    `exchange.organization.updated` when something changed."""
    changes = body.model_dump(exclude_unset=True)
    state = await _service(request).update_organization(principal, str(org_id), changes, if_match_versions(if_match))
    return _resource(state)


@router.post(
    "/organizations/{org_id}/merge",
    tags=["organizations"],
    response_model=s.MergeRead,
    responses=WRITE,
)
async def merge_organizations(org_id: Id, body: s.OrganizationMerge, principal: Writer, request: Request) -> Any:
    """Admins only: merge the duplicate `duplicate_id` into this organization. Its agreements and
    memberships move here; it is published as `exchange.organization.merged` (`status: "merged"`,
    `merged_into`) and counts nowhere, each moved agreement as `exchange.agreement.updated`."""
    return await _service(request).merge_organizations(principal, str(org_id), str(body.duplicate_id))


# -- agreements ------------------------------------------------------------------------------------
@router.post(
    "/agreements",
    tags=["agreements"],
    status_code=201,
    response_model=s.AgreementRead,
    responses={
        201: {"description": "Recorded and published", "headers": ETAG_HEADER},
        200: {
            "description": "Posted before with the same content: the same agreement; nothing published",
            "model": s.AgreementRead,
            "headers": ETAG_HEADER,
        },
        **WRITE,
    },
)
async def sign_agreement(body: s.AgreementCreate, principal: Writer, request: Request) -> JSONResponse:
    """Record an agreement (`partners:write`) signed by your body (admins: `signed_by`). Publishes
    `exchange.agreement.signed`, and at once `exchange.agreement.expiring` when it is already inside a
    notice window (or `exchange.agreement.expired` when its last day is over)."""
    content = body.model_dump(exclude={"signed_by"})
    content["partner_org_ids"] = [str(i) for i in dict.fromkeys(body.partner_org_ids)]
    signed_by = Body(body.signed_by.kind, body.signed_by.code) if body.signed_by else None
    state, created = await _service(request).sign_agreement(principal, content, signed_by)
    return _resource(state, 201 if created else 200)


@router.get("/agreements", tags=["agreements"], response_model=s.AgreementPage, responses=READ)
async def list_agreements(
    principal: CurrentPrincipal,
    request: Request,
    status: Annotated[AgreementStatus | None, Query(description="`active`, `expired` or `terminated`.")] = None,
    kind: Annotated[AgreementKind | None, Query(description="Kind of agreement.")] = None,
    signed_by: Annotated[
        str | None, Query(pattern=BODY, description="The signing body, `kind:code` (`society:CMES`).")
    ] = None,
    partner_org_id: Annotated[uuid.UUID | None, Query(description="Agreements with this partner.")] = None,
    expiring_within_days: Annotated[
        int | None,
        Query(
            ge=0,
            le=3650,
            description="Active agreements whose last day is within this many days (today in "
            "EXCHANGE_TIMEZONE): those needing a renewal decision, `will_not_renew` ones included.",
        ),
    ] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> dict[str, Any]:
    """Agreements in recording order, filtered; any valid token may read."""
    query = AgreementQuery(
        status=status,
        kind=kind,
        signed_by=_body(signed_by, "signed_by"),
        partner_org_id=str(partner_org_id) if partner_org_id else None,
    )
    page = await _service(request).list_agreements(
        query, expiring_within_days=expiring_within_days, limit=limit, cursor=cursor
    )
    return _page(page)


@router.get(
    "/agreements/{agreement_id}",
    tags=["agreements"],
    response_model=s.AgreementRead,
    responses={200: {"headers": ETAG_HEADER}, **s.problems(401, 404, 422)},
)
async def get_agreement(agreement_id: Id, principal: CurrentPrincipal, request: Request) -> JSONResponse:
    """One agreement; `ETag` is its version."""
    return _resource(await _service(request).get_agreement(str(agreement_id)))


@router.patch(
    "/agreements/{agreement_id}",
    tags=["agreements"],
    response_model=s.AgreementRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE},
)
async def update_agreement(
    agreement_id: Id, body: s.AgreementUpdate, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """Change an agreement your body signed (admins: any), e.g. `will_not_renew`. Publishes
    `exchange.agreement.updated` when something changed; 409 once terminated."""
    changes = body.model_dump(exclude_unset=True)
    if "partner_org_ids" in changes:
        changes["partner_org_ids"] = [str(i) for i in dict.fromkeys(changes["partner_org_ids"])]
    state = await _service(request).update_agreement(principal, str(agreement_id), changes, if_match_versions(if_match))
    return _resource(state)


@router.post(
    "/agreements/{agreement_id}/renew",
    tags=["agreements"],
    response_model=s.AgreementRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE},
)
async def renew_agreement(
    agreement_id: Id, body: s.AgreementRenew, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """Extend an agreement's term (`expires_on` must move forward); an expired one is `active` again.
    Recorded in `renewals`; publishes `exchange.agreement.renewed`. 409 when terminated."""
    state = await _service(request).renew_agreement(
        principal, str(agreement_id), body.expires_on, if_match_versions(if_match)
    )
    return _resource(state)


@router.post(
    "/agreements/{agreement_id}/terminate",
    tags=["agreements"],
    response_model=s.AgreementRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE},
)
async def terminate_agreement(
    agreement_id: Id, body: s.AgreementTerminate, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """End an agreement early, with a reason. Publishes `exchange.agreement.terminated`; 409 when it
    already is."""
    state = await _service(request).terminate_agreement(
        principal, str(agreement_id), body.reason, if_match_versions(if_match)
    )
    return _resource(state)


@router.get(
    "/agreements/{agreement_id}/history",
    tags=["agreements"],
    response_model=s.HistoryPage,
    responses=s.problems(401, 404, 422),
)
async def agreement_history(
    agreement_id: Id,
    principal: CurrentPrincipal,
    request: Request,
    limit: PageLimit = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of a page.")] = None,
) -> dict[str, Any]:
    """Every change of an agreement, oldest first: who (the token's client and body), when, which
    fields, old and new values."""
    after = 0 if cursor is None else int(cursor)
    entries = await _service(request).agreement_history(str(agreement_id), after=after, limit=limit + 1)
    items = [
        {"at": e.at.isoformat().replace("+00:00", "Z"), "actor": e.actor, "action": e.action, "changes": e.changes}
        for e in entries[:limit]
    ]
    return {"items": items, "next_cursor": str(entries[limit - 1].id) if len(entries) > limit else None}


@router.put(
    "/agreements/{agreement_id}/document",
    tags=["agreements"],
    response_model=s.AgreementRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE, **s.problems(415)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The signed PDF scan, at most 20 MB (`Content-Type: application/pdf`); a body that "
            "does not start as a PDF does (`%PDF-`) is 422.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_document(agreement_id: Id, principal: Writer, request: Request) -> JSONResponse:
    """Upload the signed PDF scan of an agreement your body signed (replaces an earlier one). Its
    SHA-256 and size go into `document`; publishes `exchange.agreement.updated`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/pdf":
        raise Problem("Send the document as `Content-Type: application/pdf`.", status=415)
    data = await request.body()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise Problem(f"The document is larger than {MAX_DOCUMENT_BYTES} bytes.", status=413)
    return _resource(await _service(request).upload_document(principal, str(agreement_id), data))


@router.get(
    "/agreements/{agreement_id}/document",
    tags=["agreements"],
    response_class=Response,
    responses={
        200: {
            "description": "The PDF",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        **s.problems(401, 404, 422),
    },
)
async def download_document(agreement_id: Id, principal: CurrentPrincipal, request: Request) -> Response:
    """The signed PDF scan; its SHA-256 in the `ETag`."""
    data, digest = await _service(request).download_document(str(agreement_id))
    return Response(data, media_type="application/pdf", headers={"ETag": f'"{digest}"'})


# -- memberships -----------------------------------------------------------------------------------
@router.post(
    "/memberships",
    tags=["memberships"],
    status_code=201,
    response_model=s.MembershipRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE},
)
async def record_membership(body: s.MembershipCreate, principal: Writer, request: Request) -> JSONResponse:
    """Record your body's membership in an international organization (admins: `member`). 409 when it is
    already an active member. Publishes `exchange.membership.recorded`."""
    member = Body(body.member.kind, body.member.code) if body.member else None
    state = await _service(request).record_membership(principal, str(body.organization_id), body.since, member)
    return _resource(state, 201)


@router.get("/memberships", tags=["memberships"], response_model=s.MembershipPage, responses=READ)
async def list_memberships(
    principal: CurrentPrincipal,
    request: Request,
    organization_id: Annotated[uuid.UUID | None, Query(description="Memberships in this organization.")] = None,
    member: Annotated[
        str | None, Query(pattern=BODY, description="The member body, `kind:code` (`society:CMES`).")
    ] = None,
    status: Annotated[MembershipStatus | None, Query(description="`active` or `ended`.")] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> dict[str, Any]:
    """Memberships in recording order, filtered; any valid token may read."""
    query = MembershipQuery(
        organization_id=str(organization_id) if organization_id else None, member=_body(member, "member"), status=status
    )
    return _page(await _service(request).list_memberships(query, limit=limit, cursor=cursor))


@router.get(
    "/memberships/{membership_id}",
    tags=["memberships"],
    response_model=s.MembershipRead,
    responses={200: {"headers": ETAG_HEADER}, **s.problems(401, 404, 422)},
)
async def get_membership(membership_id: Id, principal: CurrentPrincipal, request: Request) -> JSONResponse:
    """One membership; `ETag` is its version."""
    return _resource(await _service(request).get_membership(str(membership_id)))


@router.post(
    "/memberships/{membership_id}/end",
    tags=["memberships"],
    response_model=s.MembershipRead,
    responses={200: {"headers": ETAG_HEADER}, **WRITE},
)
async def end_membership(
    membership_id: Id, body: s.MembershipEnd, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    """End your body's membership (admins: any) on `until` (default today). Publishes
    `exchange.membership.ended`; 409 when it already ended."""
    state = await _service(request).end_membership(
        principal, str(membership_id), body.until, if_match_versions(if_match)
    )
    return _resource(state)
