"""partners and talent are skeletons without write endpoints yet; when one lands, it joins the body fuzzing
(common.testing.fuzz) as events' and reporting's did (services/*/tests/integration/test_fuzz_bodies.py)."""

from __future__ import annotations

from common.testing.fuzz import write_routes
from common.testing.plugin import TEST_SECRET
from partners.config import PartnersSettings
from partners.entrypoints.app import create_app as create_partners
from talent.config import TalentSettings
from talent.entrypoints.app import create_app as create_talent


def test_partners_and_talent_have_no_write_endpoint_to_fuzz_yet():
    # Building an app starts nothing (engines are built in the lifespan).
    assert write_routes(create_partners(PartnersSettings(environment="test", jwt_secret=TEST_SECRET))) == set()
    assert write_routes(create_talent(TalentSettings(environment="test", jwt_secret=TEST_SECRET))) == set()
