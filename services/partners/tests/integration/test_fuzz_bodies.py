"""Generated bodies against every write endpoint (bounded: common.testing.fuzz.FUZZ_SETTINGS), through
the app on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, each_write_route, send_generated_body, write_routes
from hypothesis import given, settings
from hypothesis import strategies as st

from ..conftest import agreement, organization

# A valid body per write endpoint, which the generated ones start from; None: it takes none (or not JSON).
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/v1/partners/organizations"): organization(name="Fuzzed Academy"),
    ("PATCH", "/v1/partners/organizations/{org_id}"): {"website": "https://example.org/fuzz"},
    ("POST", "/v1/partners/organizations/{org_id}/merge"): {"duplicate_id": str(uuid.uuid4())},
    ("POST", "/v1/partners/agreements"): agreement([str(uuid.uuid4())]),
    ("PATCH", "/v1/partners/agreements/{agreement_id}"): {"title": "Renamed", "will_not_renew": True},
    ("POST", "/v1/partners/agreements/{agreement_id}/renew"): {"expires_on": "2040-01-01"},
    ("POST", "/v1/partners/agreements/{agreement_id}/terminate"): {"reason": "Superseded"},
    ("PUT", "/v1/partners/agreements/{agreement_id}/document"): None,
    ("POST", "/v1/partners/memberships"): {"organization_id": str(uuid.uuid4()), "since": "2016-01-01"},
    ("POST", "/v1/partners/memberships/{membership_id}/end"): {"until": "2026-01-01"},
}
# Ten endpoints: fewer examples each than events' four keep the module's time alike.
PARTNERS_FUZZ = settings(FUZZ_SETTINGS, max_examples=max(20, FUZZ_SETTINGS.max_examples // 3))


def test_every_write_endpoint_is_fuzzed(service):
    assert write_routes(service.app) == set(VALID)


@pytest.fixture(scope="module")
async def ids(service, headers) -> dict[str, str]:
    hq = headers("hq", "HQ", "admin")
    org = await service.create_organization(hq, country="DE")
    made = await service.client.post("/v1/partners/agreements", json=agreement([org["id"]]), headers=hq)
    assert made.status_code == 201, made.text
    member = await service.client.post(
        "/v1/partners/memberships", json={"organization_id": org["id"], "since": "2016-01-01"}, headers=hq
    )
    assert member.status_code == 201, member.text
    return {"org_id": org["id"], "agreement_id": made.json()["id"], "membership_id": member.json()["id"]}


@each_write_route(VALID)
@PARTNERS_FUZZ
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, headers, ids, method, path, data):
    # hq with admin may act for any body, so generated bodies get past authorisation to validation.
    route = (method, path)
    await send_generated_body(service.client, data, route, VALID[route], ids, headers("hq", "HQ", "admin"))
