"""Bad input, table-driven: each case answers 422 (or 404/413) problem+json naming the field, and nothing
is created, changed or published."""

from __future__ import annotations

from typing import Any

import pytest
from common.db import create_engine
from sqlalchemy import text

from ..conftest import agreement, organization

ORG = "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a01"  # replaced by a real partner's id in the agreement cases
NO_SUCH = "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a99"


def org_without(name: str) -> dict[str, Any]:
    body = organization()
    del body[name]
    return body


def agr_without(name: str) -> dict[str, Any]:
    body = agreement([ORG])
    del body[name]
    return body


ORGANIZATION_CASES: list[tuple[str, Any, str]] = [
    ("unknown-field", organization(colour="red"), "colour"),
    ("unknown-field-id", organization(id=ORG), "id"),
    ("unknown-field-version", organization(version=3), "version"),
    ("unknown-field-status", organization(status="merged"), "status"),
    ("name-missing", org_without("name"), "name"),
    ("name-empty", organization(name=""), "name"),
    ("name-blank", organization(name="   "), "name"),
    ("name-301", organization(name="x" * 301), "name"),
    ("name-nul", organization(name="Academy\x00"), "name"),
    ("name-newline", organization(name="Academy\nof"), "name"),
    ("name-not-a-string", organization(name=42), "name"),
    ("name-zh-301", organization(name_zh="科" * 301), "name_zh"),
    ("country-unknown", organization(country="XX"), "country"),
    ("country-alpha3", organization(country="DEU"), "country"),
    ("country-number", organization(country=49), "country"),
    ("country-null-not-international", organization(country=None, kind="academy"), "country"),
    ("kind-unknown", organization(kind="club"), "kind"),
    ("kind-missing", org_without("kind"), "kind"),
    ("ror-bad-format", organization(ror_id="12345"), "ror_id"),
    ("ror-bad-checksum", organization(ror_id="03wnrjx88"), "ror_id"),
    ("ror-letter-u", organization(ror_id="03wnrju87"), "ror_id"),
    ("ror-other-host", organization(ror_id="https://example.org/03wnrjx87"), "ror_id"),
    ("website-not-http", organization(website="ftp://example.org"), "website"),
    ("website-spaces", organization(website="https://exa mple.org"), "website"),
    ("website-2001", organization(website="https://e.org/" + "x" * 2000), "website"),
]

AGREEMENT_CASES: list[tuple[str, Any, str]] = [
    ("unknown-field", agreement([ORG], colour="red"), "colour"),
    ("unknown-field-status", agreement([ORG], status="expired"), "status"),
    ("unknown-field-version", agreement([ORG], version=2), "version"),
    ("unknown-field-signer", agreement([ORG], signatory={"kind": "hq", "code": "HQ"}), "signatory"),
    ("title-missing", agr_without("title"), "title"),
    ("title-empty", agreement([ORG], title=""), "title"),
    ("title-301", agreement([ORG], title="t" * 301), "title"),
    ("title-nul", agreement([ORG], title="MoU\x00"), "title"),
    ("kind-unknown", agreement([ORG], kind="treaty"), "kind"),
    ("partners-missing", agr_without("partner_org_ids"), "partner_org_ids"),
    ("partners-empty", agreement([]), "partner_org_ids"),
    ("partners-251", agreement([ORG] * 251), "partner_org_ids"),
    ("partner-not-a-uuid", agreement(["royal-society"]), "partner_org_ids"),
    ("partner-does-not-exist", agreement([ORG, NO_SUCH]), "partner_org_ids"),
    ("signed-on-missing", agr_without("signed_on"), "signed_on"),
    ("signed-on-impossible", agreement([ORG], signed_on="2025-02-30"), "signed_on"),
    ("signed-on-not-iso", agreement([ORG], signed_on="10/05/2025"), "signed_on"),
    ("signed-on-1948", agreement([ORG], signed_on="1948-12-31"), "signed_on"),
    ("expires-2101", agreement([ORG], expires_on="2101-01-01"), "expires_on"),
    ("expires-before-signing", agreement([ORG], signed_on="2025-05-10", expires_on="2025-05-09"), "body"),
    ("expires-on-signing-day", agreement([ORG], signed_on="2025-05-10", expires_on="2025-05-10"), "body"),
    ("external-ref-empty", agreement([ORG], external_ref=""), "external_ref"),
    ("external-ref-201", agreement([ORG], external_ref="r" * 201), "external_ref"),
    ("external-ref-control", agreement([ORG], external_ref="a\tb"), "external_ref"),
    ("fields-not-a-list", agreement([ORG], fields="energy"), "fields"),
    ("fields-251", agreement([ORG], fields=["f"] * 251), "fields"),
    ("field-33", agreement([ORG], fields=["f" * 33]), "fields"),
    ("field-spaces", agreement([ORG], fields=["joint research"]), "fields"),
    ("flagship-not-bool", agreement([ORG], flagship="maybe"), "flagship"),
    ("signed-by-unknown-kind", agreement([ORG], signed_by={"kind": "city", "code": "SZ"}), "signed_by"),
    ("signed-by-code-33", agreement([ORG], signed_by={"kind": "hq", "code": "H" * 33}), "signed_by"),
]

MEMBERSHIP_CASES: list[tuple[str, Any, str]] = [
    ("unknown-field", {"organization_id": ORG, "since": "2016-01-01", "role": "x"}, "role"),
    ("organization-missing", {"since": "2016-01-01"}, "organization_id"),
    ("organization-not-a-uuid", {"organization_id": "wfeo", "since": "2016-01-01"}, "organization_id"),
    ("organization-does-not-exist", {"organization_id": NO_SUCH, "since": "2016-01-01"}, "organization_id"),
    ("since-missing", {"organization_id": ORG}, "since"),
    ("since-impossible", {"organization_id": ORG, "since": "2016-02-30"}, "since"),
]


@pytest.fixture(scope="module")
async def partner(service, headers):
    return (await service.create_organization(headers()))["id"]


async def _rows(service) -> dict[str, int]:
    engine = create_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            return {
                table: int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                for table in ("organizations", "agreements", "memberships", "audit_log")
            }
    finally:
        await engine.dispose()


def _swap(value: Any, partner: str) -> Any:
    if isinstance(value, dict):
        return {k: _swap(v, partner) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, partner) for v in value]
    return partner if value == ORG else value


async def _refused(service, headers, path: str, body: Any, field: str) -> None:
    before = await _rows(service)
    response = await service.client.post(path, json=body, headers=headers())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    locs = [e["loc"] for e in response.json()["errors"]]
    assert any(field in loc for loc in locs), locs
    assert await _rows(service) == before


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in ORGANIZATION_CASES], ids=[c[0] for c in ORGANIZATION_CASES])
async def test_bad_organization(service, headers, body, field):
    await _refused(service, headers, "/v1/partners/organizations", body, field)


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in AGREEMENT_CASES], ids=[c[0] for c in AGREEMENT_CASES])
async def test_bad_agreement(service, headers, partner, body, field):
    await _refused(service, headers, "/v1/partners/agreements", _swap(body, partner), field)


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in MEMBERSHIP_CASES], ids=[c[0] for c in MEMBERSHIP_CASES])
async def test_bad_membership(service, headers, partner, body, field):
    await _refused(service, headers, "/v1/partners/memberships", _swap(body, partner), field)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/partners/organizations", {"country": "XX"}, 422),
        ("/v1/partners/organizations", {"region": "m49:999999"}, 422),
        ("/v1/partners/organizations", {"region": "cn:440000"}, 422),
        ("/v1/partners/organizations", {"limit": 501}, 422),
        ("/v1/partners/organizations", {"cursor": "not-a-cursor!"}, 422),
        ("/v1/partners/agreements", {"expiring_within_days": -1}, 422),
        ("/v1/partners/agreements", {"signed_by": "nobody"}, 422),
        ("/v1/partners/agreements", {"status": "renewed"}, 422),
        ("/v1/partners/agreements", {"contry": "DE"}, 422),  # a misspelt filter is not ignored
        ("/v1/partners/organizations", {"country": ["DE", "FR"]}, 422),  # nor one given twice
        ("/v1/partners/organizations", {"country": "ıt"}, 422),  # dotless i: not `IT`
        ("/v1/partners/organizations", {"cursor": "A" * 23}, 422),
        (f"/v1/partners/agreements/{NO_SUCH}/history", {"cursor": "²"}, 422),
        ("/v1/partners/memberships", {"member": "society:"}, 422),
        ("/v1/partners/agreements/not-a-uuid", {}, 422),
        (f"/v1/partners/agreements/{NO_SUCH}", {}, 404),
        (f"/v1/partners/organizations/{NO_SUCH}", {}, 404),
        (f"/v1/partners/memberships/{NO_SUCH}", {}, 404),
        (f"/v1/partners/agreements/{NO_SUCH}/history", {}, 404),
        (f"/v1/partners/agreements/{NO_SUCH}/document", {}, 404),
    ],
)
async def test_bad_reads(service, headers, path, params, status):
    response = await service.client.get(path, params=params, headers=headers())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_unparseable_and_oversized_bodies(service, headers):
    before = await _rows(service)
    for content, status in ((b"{not json", 422), (b"\xff\xfe", 422), (b"[" + b"1," * 3_000_000 + b"1]", 413)):
        response = await service.client.post(
            "/v1/partners/organizations", content=content, headers=headers() | {"Content-Type": "application/json"}
        )
        assert response.status_code in (status, 400), response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await _rows(service) == before
