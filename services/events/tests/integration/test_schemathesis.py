"""Property-based tests from the service's own OpenAPI document (bounded): no 5xx, and every response
conforms to the documented status codes, content types, headers and schemas."""

from __future__ import annotations

import pytest
import schemathesis
from common.auth import mint_token
from common.testing.plugin import TEST_SECRET
from events.config import EventsSettings
from events.entrypoints.app import create_app
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 25


# The document is the app's own; building the app starts nothing (engines are built in the lifespan).
schema = schemathesis.openapi.from_dict(
    create_app(EventsSettings(environment="test", jwt_secret=TEST_SECRET)).openapi()
)


@pytest.fixture(scope="module")
def auth_header():
    # hq with admin may write for any body, so generated bodies get past authorisation to validation.
    return {"Authorization": "Bearer " + mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes="admin")}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_openapi(case, live, auth_header):
    case.call_and_validate(
        base_url=live.url,
        headers=auth_header,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
