"""`talent republish`: every person's current public state staged again (an erased person as a removal),
published by the relay at the person's version, with no personal field, in the same envelope as the written
message (both made by `common.outbox.outbox_message`); the consumers' version gate makes it harmless, and it
repairs a consumer that missed changes (tests/system/test_republish.py for events)."""

from __future__ import annotations

from common.db import create_engine, session_factory
from common.republish import republish
from common.testing.messages import envelope_shape
from talent.adapters.republish import AGGREGATES
from talent.adapters.tables import outbox
from talent.contracts import PERSON_REMOVED, PERSON_UPSERTED
from talent.domain.model import PERSONAL_FIELDS

from ..conftest import record


async def test_republish_stages_every_persons_last_message_without_personal_fields(service, token):
    society = {"Authorization": token("society", "CSEE", "talent:sync")}
    records = [record(n, external_id=f"REPUB-{n}") for n in range(1, 4)]
    synced = await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": records}, headers=society)
    assert synced.status_code == 200 and synced.json()["created"] == 3, synced.text
    listed = (await service.client.get("/v1/talent/persons?society=CSEE", headers=society)).json()["items"]
    ids = {p["external_id"]: p["id"] for p in listed}
    erased = ids["REPUB-3"]
    assert (await service.client.delete(f"/v1/talent/persons/{erased}", headers=society)).status_code in (200, 204)
    before = await service.messages(expected=4)

    engine = create_engine(service.settings.database_url)
    try:
        counts = await republish(session_factory(engine), outbox, AGGREGATES, settings=service.settings)
    finally:
        await engine.dispose()
    assert counts["persons"] >= 3  # every person of the database, these three among them

    after = await service.messages(expected=len(before) + counts["persons"])
    # The topic is read partition by partition: the new messages are those of ids not seen before, not a tail.
    seen = {m["value"]["id"] for m in before}
    republished = [m for m in after if m["value"]["id"] not in seen and m["key"] in set(ids.values())]
    again = [m["value"] for m in republished]
    by_person = {m["subject"]: m for m in again}
    assert set(by_person) == set(ids.values())
    assert by_person[erased]["type"] == PERSON_REMOVED
    assert {by_person[ids[f"REPUB-{n}"]]["type"] for n in (1, 2)} == {PERSON_UPSERTED}
    for message in again:
        assert not set(PERSONAL_FIELDS) & set(message["data"]), message["data"]
    versions = {m["key"]: m["value"]["data"]["version"] for m in before if m["key"] in set(ids.values())}
    assert all(by_person[k]["data"]["version"] == v for k, v in versions.items())  # the same versions again
    last_written = {m["key"]: m for m in before if m["key"] in set(ids.values())}
    for message in republished:
        written = last_written[message["key"]]  # a key's messages keep their order (one partition)
        assert envelope_shape(message["raw"], message["headers"].items()) == envelope_shape(
            written["raw"], written["headers"].items()
        )
