"""Generated bodies against every write endpoint (bounded: common.testing.fuzz.FUZZ_SETTINGS), through
the app on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, content_types, each_write_route, send_generated_body, write_routes
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


@each_write_route(VALID)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, token, person_id, method, path, data):
    # The society's own sync token, so generated bodies get past authorisation to validation.
    society = {"Authorization": token("society", "CMES", "talent:sync")}
    kinds = st.one_of(content_types, st.just("application/x-ndjson"))
    route = (method, path)
    await send_generated_body(service.client, data, route, VALID[route], {"person_id": person_id}, society, kinds)


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
