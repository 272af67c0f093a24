"""`partners republish` stages each organization's, agreement's and membership's last message again, at
the same version and in the same envelope as the written one, both made by `common.outbox.outbox_message`."""

from __future__ import annotations

from common.db import create_engine, session_factory
from common.republish import republish
from common.testing.messages import envelope_shape
from partners.adapters.republish import AGGREGATES
from partners.adapters.tables import outbox

from ..conftest import Service, agreement


async def test_a_republished_message_is_the_written_ones_envelope_and_state(service: Service, headers):
    hq, society = headers(), headers("society", "CMES")
    organization = (await service.create_organization(hq))["id"]
    signed = await service.client.post("/v1/partners/agreements", json=agreement([organization]), headers=hq)
    assert signed.status_code == 201, signed.text
    member = await service.client.post(
        "/v1/partners/memberships", json={"organization_id": organization, "since": "2010-05-01"}, headers=society
    )
    assert member.status_code == 201, member.text
    subjects = [organization, signed.json()["id"], member.json()["id"]]
    for subject in subjects:
        assert len(await service.records_for(subject, 1, 20.0)) == 1

    engine = create_engine(service.settings.database_url)
    try:
        counts = await republish(session_factory(engine), outbox, AGGREGATES, settings=service.settings)
    finally:
        await engine.dispose()
    assert all(counts[name] >= 1 for name in ("organizations", "agreements", "memberships")), counts

    types = []
    for subject in subjects:
        records = await service.records_for(subject, 2, 20.0)
        assert len(records) == 2
        written, republished = records
        shape = envelope_shape(republished.value, republished.headers)
        assert shape == envelope_shape(written.value, written.headers)
        types.append(shape["type"])
    assert types == ["exchange.organization.registered", "exchange.agreement.signed", "exchange.membership.recorded"]
