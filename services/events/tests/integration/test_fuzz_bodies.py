"""Generated bodies against every write endpoint (bounded: common.testing.fuzz.FUZZ_SETTINGS), through
the app on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, each_write_route, send_generated_body, write_routes
from hypothesis import given
from hypothesis import strategies as st

from ..conftest import body

# A valid body per write endpoint, which the generated ones start from; None: it takes none.
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/v1/events"): body(external_ref="fuzz"),
    ("POST", "/v1/events/batch"): {"events": [body(external_ref="fuzz-1"), body(external_ref="fuzz-2")]},
    ("PATCH", "/v1/events/{event_id}"): {"title": "Renamed forum", "participants": 400, "countries": ["DE"]},
    ("DELETE", "/v1/events/{event_id}"): None,
}


def test_every_write_endpoint_is_fuzzed(service):
    assert write_routes(service.app) == set(VALID)


@pytest.fixture(scope="module")
async def event_id(service, token) -> str:
    created = await service.client.post(
        "/v1/events", json=body(), headers={"Authorization": token("province", "440000", "events:write")}
    )
    assert created.status_code == 201
    return str(created.json()["id"])


@each_write_route(VALID)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, token, event_id, method, path, data):
    # hq with admin may write for any body, so generated bodies get past authorisation to validation.
    hq = {"Authorization": token("hq", "HQ", "admin")}
    route = (method, path)
    await send_generated_body(service.client, data, route, VALID[route], {"event_id": event_id}, hq)
