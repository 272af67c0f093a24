"""Property-based tests from the service's own OpenAPI document (bounded): no 5xx, and responses
conform to the documented status codes, content types and schemas, with every schemathesis check and
the stateful phase. The never-ending stream is
tested in test_stream.py instead."""

from __future__ import annotations

import pytest
from common.auth import mint_token
from common.testing.contract import bounded, every_check, load
from common.testing.live import LiveServer
from common.testing.plugin import TEST_SECRET
from reporting.config import ReportingSettings
from reporting.entrypoints.app import create_app
from support import prepare

MAX_EXAMPLES = 30

schema = load(create_app(ReportingSettings(environment="test", jwt_secret=TEST_SECRET)).openapi()).exclude(
    path="/v1/metrics/stream"
)


@pytest.fixture(scope="module")
async def live(make_database, kafka_bootstrap, topic_prefix, jwt_secret):
    settings = await prepare(make_database, "rep_schema", kafka_bootstrap, f"{topic_prefix}schema.", jwt_secret)
    with LiveServer(create_app(settings), "reporting-live") as server:
        yield server


CHECKS = every_check()


@pytest.fixture(scope="module")
def auth_header():
    token = mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes="reporting:read")
    return {"Authorization": "Bearer " + token}


@schema.parametrize()
@bounded(MAX_EXAMPLES)
def test_api_conforms_to_its_openapi(case, live, auth_header):
    case.call_and_validate(
        base_url=live.url,
        headers=auth_header,
        checks=CHECKS,
    )


# No stateful phase here: reporting only reads (no operation creates what another takes), so the
# document has no links for schemathesis to chain; the services that write run it.
