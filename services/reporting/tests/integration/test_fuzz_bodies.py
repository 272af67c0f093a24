"""Generated bodies against every write endpoint of reporting (bounded: common.testing.fuzz.FUZZ_SETTINGS),
on its real database: never a 5xx, and every refusal in problem+json."""

from __future__ import annotations

from typing import Any

import pytest
from common.testing.fuzz import FUZZ_SETTINGS, each_write_route, send_generated_body, write_routes
from hypothesis import given
from hypothesis import strategies as st
from support import prepare, running_service

# A valid body per write endpoint, which the generated ones start from; None: it takes none.
VALID: dict[tuple[str, str], Any] = {("POST", "/v1/dashboard/session"): None}


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        make_database, "rep_fuzz", kafka_bootstrap, f"{topic_prefix}repfuzz.", jwt_secret, consumer_enabled=False
    )
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc, svc.client() as client:
        svc.http = client
        yield svc


def test_every_write_endpoint_is_fuzzed(service):
    assert write_routes(service.app) == set(VALID)


@each_write_route(VALID)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_generated_bodies_never_break_the_service(service, method, path, data):
    await send_generated_body(service.http, data, (method, path), VALID[(method, path)], {}, service.headers)
