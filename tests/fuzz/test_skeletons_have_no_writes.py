"""talent is a skeleton without write endpoints yet; when they land, they join the body fuzzing
(common.testing.fuzz) as the other services' did (services/*/tests/integration/test_fuzz_bodies.py)."""

from __future__ import annotations

from common.testing.fuzz import write_routes
from common.testing.plugin import TEST_SECRET
from talent.config import TalentSettings
from talent.entrypoints.app import create_app as create_talent


def test_talent_has_no_write_endpoint_to_fuzz_yet():
    # Building an app starts nothing (engines are built in the lifespan).
    assert write_routes(create_talent(TalentSettings(environment="test", jwt_secret=TEST_SECRET))) == set()
