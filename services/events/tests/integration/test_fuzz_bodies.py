"""Generated bodies against every write endpoint (bounded: common.testing.fuzz.FUZZ_SETTINGS), through
the app on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, assert_handled, content_types, fill_path, request_bodies, write_routes
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


@pytest.mark.parametrize(("method", "path"), sorted(VALID), ids=[f"{m} {p}" for m, p in sorted(VALID)])
@FUZZ_SETTINGS
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, token, event_id, method, path, data):
    sent = data.draw(request_bodies(VALID[(method, path)]), label="body")
    url = fill_path(path, {"event_id": data.draw(st.sampled_from([event_id, str(uuid.uuid4()), "not-a-uuid"]))})
    # hq with admin may write for any body, so generated bodies get past authorisation to validation.
    headers = {"Authorization": token("hq", "HQ", "admin"), "Content-Type": data.draw(content_types)}
    response = await service.client.request(method, url, content=sent, headers=headers)
    assert_handled(response.status_code, response.headers, response.text, f"{method} {url} {sent[:200]!r}")
