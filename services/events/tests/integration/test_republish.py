"""`events republish` stages each event's last message again: recorded, updated or cancelled as it was
written, at the same version and in the same envelope, both made by `common.outbox.outbox_message`
(tests/system/test_republish.py shows it repairing a consumer that missed changes)."""

from __future__ import annotations

from common.db import create_engine, session_factory
from common.republish import republish
from common.testing.messages import envelope_shape
from events.adapters.republish import AGGREGATES
from events.adapters.tables import outbox

from ..conftest import Service, body

PROVINCE = ("province", "440000", "events:write")


async def test_a_republished_message_is_the_written_ones_envelope_and_state(service: Service, token):
    headers = {"Authorization": token(*PROVINCE)}
    recorded, updated, cancelled = [
        (await service.client.post("/v1/events", json=body(), headers=headers)).json()["id"] for _ in range(3)
    ]
    changed = await service.client.patch(
        f"/v1/events/{updated}", json={"participants": 400}, headers={**headers, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    gone = await service.client.delete(f"/v1/events/{cancelled}", headers={**headers, "If-Match": '"1"'})
    assert gone.status_code == 200, gone.text
    written = {subject: len(await service.records_for(subject, 2, 20.0)) for subject in (updated, cancelled)}
    written[recorded] = len(await service.records_for(recorded, 1, 20.0))
    assert written == {recorded: 1, updated: 2, cancelled: 2}

    engine = create_engine(service.settings.database_url)
    try:
        counts = await republish(session_factory(engine), outbox, AGGREGATES, settings=service.settings)
    finally:
        await engine.dispose()
    assert counts["events"] >= 3

    types = {}
    for subject, count in written.items():
        records = await service.records_for(subject, count + 1, 20.0)
        assert len(records) == count + 1
        last_written, republished = records[-2], records[-1]
        assert envelope_shape(republished.value, republished.headers) == envelope_shape(
            last_written.value, last_written.headers
        )
        types[subject] = envelope_shape(republished.value, republished.headers)["type"]
    assert types == {
        recorded: "exchange.event.recorded",
        updated: "exchange.event.updated",
        cancelled: "exchange.event.cancelled",
    }
