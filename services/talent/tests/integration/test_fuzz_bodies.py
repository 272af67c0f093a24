"""Generated bodies against every write endpoint (bounded: common.testing.fuzz.FUZZ_SETTINGS), through
the app on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, assert_handled, content_types, fill_path, request_bodies, write_routes
from hypothesis import given
from hypothesis import strategies as st

from ..conftest import record

# A valid body per write endpoint, which the generated ones start from; None: it takes none.
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/v1/talent/sync"): {"mode": "delta", "records": [record(1), record(2)]},
    ("DELETE", "/v1/talent/persons/{person_id}"): None,
}


def test_every_write_endpoint_is_fuzzed(service):
    assert write_routes(service.app) == set(VALID)


@pytest.fixture(scope="module")
async def person_id(service, token) -> str:
    headers = {"Authorization": token("society", "CMES", "talent:sync")}
    synced = await service.client.post(
        "/v1/talent/sync", json={"mode": "delta", "records": [record(900)]}, headers=headers
    )
    assert synced.status_code == 200, synced.text
    listed = await service.client.get("/v1/talent/persons", headers=headers)
    return str(listed.json()["items"][0]["id"])


@pytest.mark.parametrize(("method", "path"), sorted(VALID), ids=[f"{m} {p}" for m, p in sorted(VALID)])
@FUZZ_SETTINGS
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, token, person_id, method, path, data):
    sent = data.draw(request_bodies(VALID[(method, path)]), label="body")
    url = fill_path(path, {"person_id": data.draw(st.sampled_from([person_id, str(uuid.uuid4()), "not-a-uuid"]))})
    content_type = data.draw(st.one_of(content_types, st.just("application/x-ndjson")))
    # The society's own sync token, so generated bodies get past authorisation to validation.
    headers = {"Authorization": token("society", "CMES", "talent:sync"), "Content-Type": content_type}
    response = await service.client.request(method, url, content=sent, headers=headers)
    assert_handled(response.status_code, response.headers, response.text, f"{method} {url} {sent[:200]!r}")


async def test_a_body_nested_too_deeply_is_422_and_a_line_so_is_rejected_alone(service, token):
    """The fuzzer found it: json.loads raised RecursionError, answered 500."""
    headers = {"Authorization": token("society", "CMES", "talent:sync"), "Content-Type": "application/json"}
    deep = b"[" * 5000 + b"]" * 5000
    answer = await service.client.post(
        "/v1/talent/sync", content=b'{"mode": "delta", "records": ' + deep + b"}", headers=headers
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    lines = b'{"mode": "delta"}\n' + deep + b"\n"
    streamed = await service.client.post(
        "/v1/talent/sync", content=lines, headers={**headers, "Content-Type": "application/x-ndjson"}
    )
    assert streamed.status_code < 500, streamed.text
