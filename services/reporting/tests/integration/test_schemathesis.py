"""Property-based tests from the service's own OpenAPI document (bounded): no 5xx, and responses
conform to the documented status codes, content types and schemas. The never-ending stream is
tested in test_stream.py instead."""

from __future__ import annotations

import pytest
import schemathesis
from common.auth import mint_token
from common.testing.live import LiveServer
from common.testing.plugin import TEST_SECRET
from hypothesis import HealthCheck, settings
from reporting.config import ReportingSettings
from reporting.entrypoints.app import create_app
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support import prepare

MAX_EXAMPLES = 30

schema = schemathesis.openapi.from_dict(
    create_app(ReportingSettings(environment="test", jwt_secret=TEST_SECRET)).openapi()
).exclude(path="/v1/metrics/stream")


@pytest.fixture(scope="module")
async def live(make_database, kafka_bootstrap, topic_prefix, jwt_secret):
    settings = await prepare(make_database, "rep_schema", kafka_bootstrap, f"{topic_prefix}schema.", jwt_secret)
    with LiveServer(create_app(settings), "reporting-live") as server:
        yield server


@pytest.fixture(scope="module")
def auth_header():
    token = mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes="reporting:read")
    return {"Authorization": "Bearer " + token}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_openapi(case, live, auth_header):
    case.call_and_validate(
        base_url=live.url,
        headers=auth_header,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
