"""The contract end to end on real PostgreSQL and Kafka: post → row → outbox → message; idempotency,
concurrency, reads, filters, pagination, If-Match, cancel."""

from __future__ import annotations

import asyncio
import uuid

from common.ids import uuid7_strings
from common.testing.plugin import wait_until
from events.adapters.tables import events, outbox
from sqlalchemy import func, select

from ..conftest import body

PROVINCE = ("province", "440000", "events:write")


async def count(service, table, *where) -> int:
    async with service.app.state.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_post_commits_row_and_outbox_and_publishes_the_message(service, token):
    sent = body()
    response = await service.client.post("/v1/events", json=sent, headers={"Authorization": token(*PROVINCE)})
    assert response.status_code == 201, response.text
    state = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/v1/events/{state['id']}"
    assert state["organizer"] == {"kind": "province", "code": "440000"}
    assert state["version"] == 1 and state["status"] == "active"
    for name, value in sent.items():
        assert state[name] == (sorted(value) if name == "countries" else value), name
    assert await count(service, events, events.c.id == uuid.UUID(state["id"])) == 1

    messages = await service.messages_for(state["id"], expected=1)
    assert len(messages) == 1
    message = messages[0]
    assert message["key"] == state["id"]
    assert message["value"]["type"] == "exchange.event.recorded"
    assert message["value"]["source"] == "/events"
    assert message["value"]["subject"] == state["id"]
    assert message["value"]["specversion"] == "1.0"
    assert message["value"]["data"] == state  # the whole public state, exactly as the API shows it
    assert message["headers"]["ce_type"] == b"exchange.event.recorded"

    read = await service.client.get(f"/v1/events/{state['id']}", headers={"Authorization": token("society", "X")})
    assert read.status_code == 200 and read.json() == state and read.headers["ETag"] == '"1"'


async def test_same_body_again_answers_200_and_publishes_nothing(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    sent = body(countries=["FR", "de"])
    first = await service.client.post("/v1/events", json=sent, headers=headers)
    assert first.status_code == 201
    again = await service.client.post(
        "/v1/events", json=body(external_ref=sent["external_ref"], countries=["DE", "FR"]), headers=headers
    )
    assert again.status_code == 200 and again.json() == first.json()
    event_id = first.json()["id"]
    assert len(await service.messages_for(event_id, expected=1)) == 1
    assert len(await service.messages_for(event_id, expected=2, timeout=2)) == 1  # and no second one


async def test_different_body_under_the_same_external_ref_is_409_naming_the_existing_id(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    sent = body()
    first = await service.client.post("/v1/events", json=sent, headers=headers)
    clash = await service.client.post("/v1/events", json={**sent, "participants": 999}, headers=headers)
    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["existing_id"] == first.json()["id"]
    # another organizer may use the same external_ref for its own event
    other = await service.client.post(
        "/v1/events",
        json={**sent, "host_province": "110000"},
        headers={"Authorization": token("province", "110000", "events:write")},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_concurrent_identical_posts_create_one_event(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    sent = body()
    responses = await asyncio.gather(
        *[service.client.post("/v1/events", json=sent, headers=headers) for _ in range(12)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(200) == 11, statuses
    assert len({r.json()["id"] for r in responses}) == 1
    ref = events.c.external_ref == sent["external_ref"]
    assert await count(service, events, ref) == 1
    event_id = responses[0].json()["id"]
    assert len(await service.messages_for(event_id, expected=1)) == 1
    assert len(await service.messages_for(event_id, expected=2, timeout=2)) == 1  # and no second one


async def test_concurrent_different_bodies_create_one_and_the_rest_conflict(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    ref = f"race-{uuid.uuid4().hex[:8]}"
    responses = await asyncio.gather(
        *[service.client.post("/v1/events", json=body(external_ref=ref, papers=n), headers=headers) for n in range(8)]
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1 and statuses.count(409) == 7, statuses
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    assert {r.json()["existing_id"] for r in responses if r.status_code == 409} == {winner}


async def test_patch_publishes_updated_with_the_new_version_and_if_match_guards(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    created = (await service.client.post("/v1/events", json=body(), headers=headers)).json()
    url = f"/v1/events/{created['id']}"

    changed = await service.client.patch(
        url, json={"participants": 400, "foreign_participants": 100}, headers={**headers, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"'
    state = changed.json()
    assert state["version"] == 2 and state["participants"] == 400 and state["created_at"] == created["created_at"]

    stale = await service.client.patch(url, json={"papers": 1}, headers={**headers, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    stale_delete = await service.client.delete(url, headers={**headers, "If-Match": 'W/"1"'})
    assert stale_delete.status_code == 412
    # Not an entity tag at all: the request is malformed (the document's pattern), not stale.
    garbage = await service.client.patch(url, json={"papers": 1}, headers={**headers, "If-Match": "nonsense"})
    assert garbage.status_code == 422

    unchanged = await service.client.patch(url, json={"participants": 400}, headers=headers)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 2  # no change, no new version

    invalid = await service.client.patch(url, json={"foreign_participants": 401}, headers=headers)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["loc"] == ["body", "foreign_participants"]

    messages = await service.messages_for(created["id"], expected=2)
    assert [m["value"]["type"] for m in messages] == ["exchange.event.recorded", "exchange.event.updated"]
    assert messages[1]["value"]["data"] == state
    read = await service.client.get(url, headers=headers)
    assert read.json() == state and read.headers["ETag"] == '"2"'


async def test_delete_cancels_keeps_the_event_readable_and_publishes_cancelled(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    created = (await service.client.post("/v1/events", json=body(), headers=headers)).json()
    url = f"/v1/events/{created['id']}"
    cancelled = await service.client.delete(url, headers={**headers, "If-Match": '"1"'})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["version"] == 2
    again = await service.client.delete(url, headers=headers)
    assert again.status_code == 200 and again.json()["version"] == 2
    read = await service.client.get(url, headers=headers)
    assert read.status_code == 200 and read.json()["status"] == "cancelled"
    change = await service.client.patch(url, json={"papers": 3}, headers=headers)
    assert change.status_code == 409
    messages = await service.messages_for(created["id"], expected=2)
    assert [m["value"]["type"] for m in messages] == ["exchange.event.recorded", "exchange.event.cancelled"]
    assert messages[1]["value"]["data"]["status"] == "cancelled"
    assert messages[1]["value"]["data"]["version"] == 2


async def test_unknown_event_is_404(service, token):
    response = await service.client.get(f"/v1/events/{uuid.uuid4()}", headers={"Authorization": token(*PROVINCE)})
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


async def test_list_filters_and_cursor_pagination(service, token):
    code = "650000"
    headers = {"Authorization": token("province", code, "events:write")}
    mine = [
        body(host_province=code, countries=["KZ"], type="forum", start_date="2024-03-01", end_date="2024-03-02"),
        body(host_province=code, countries=["UZ"], type="conference", start_date="2024-06-01", end_date="2024-06-02"),
        body(
            host_province=None,
            host_country="KZ",
            countries=["KZ", "UZ"],
            type="delegation_out",
            start_date="2025-01-01",
            end_date="2025-01-05",
        ),
        body(host_province=code, countries=["RU"], type="forum", start_date="2023-01-01", end_date="2023-01-01"),
    ]
    ids = []
    for sent in mine:
        response = await service.client.post("/v1/events", json=sent, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    async def listed(**params) -> list[str]:
        response = await service.client.get(
            "/v1/events", params={"organizer": f"province:{code}", **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    assert await listed() == ids
    assert await listed(organizer=code) == ids
    assert await listed(country="KZ") == [ids[0], ids[2]]
    assert await listed(country="uz") == [ids[1], ids[2]]
    assert await listed(type="forum") == [ids[0], ids[3]]
    assert await listed(host_province=code, **{"from": "2024-01-01", "to": "2024-12-31"}) == [ids[0], ids[1]]
    await service.client.delete(f"/v1/events/{ids[3]}", headers=headers)
    assert await listed(status="active") == ids[:3]

    pages, cursor = [], None
    while True:
        params = {"organizer": f"province:{code}", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await service.client.get("/v1/events", params=params, headers=headers)).json()
        pages.append([e["id"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [ids[:3], ids[3:]]
    bad = await service.client.get("/v1/events", params={"cursor": "!!not-a-cursor"}, headers=headers)
    assert bad.status_code == 422


async def test_batch_records_valid_items_and_reports_the_rest(service, token):
    headers = {"Authorization": token(*PROVINCE)}
    good = [body() for _ in range(5)]
    existing = (await service.client.post("/v1/events", json=good[0], headers=headers)).json()
    items = [
        good[0],  # already recorded: unchanged
        good[1],
        {**good[2], "end_date": "2020-01-01"},  # invalid
        good[3],
        {**good[0], "papers": 1},  # same external_ref, different content: conflict
        good[4],
        good[4],  # twice in one batch: recorded once
        "not an object",
        {**body(), "organizer": {"kind": "province", "code": "110000"}},  # another body: rejected
    ]
    response = await service.client.post("/v1/events/batch", json={"events": items}, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    statuses = [i["status"] for i in answer["items"]]
    assert statuses == [
        "unchanged",
        "created",
        "rejected",
        "created",
        "conflict",
        "created",
        "unchanged",
        "rejected",
        "rejected",
    ]
    assert answer["items"][0]["id"] == existing["id"] and answer["items"][4]["id"] == existing["id"]
    assert answer["items"][2]["errors"][0]["loc"] == ["events", "2", "end_date"]
    assert answer["items"][8]["errors"][0]["loc"] == ["events", "8", "organizer"]
    assert answer["items"][5]["id"] == answer["items"][6]["id"]
    assert (answer["created"], answer["unchanged"], answer["conflict"], answer["rejected"]) == (3, 2, 1, 3)
    for item in answer["items"]:
        if item["status"] == "created":
            messages = await service.messages_for(item["id"], expected=1)
            assert len(messages) == 1 and messages[0]["value"]["data"]["external_ref"] == item["external_ref"]

    resent = await service.client.post(
        "/v1/events/batch", json={"events": [good[1], good[3], good[4]]}, headers=headers
    )
    assert [i["status"] for i in resent.json()["items"]] == ["unchanged"] * 3


async def test_batch_of_1000_is_accepted_and_over_1000_is_413(service, token):
    headers = {"Authorization": token("province", "320000", "events:write")}
    items = [body(host_province="320000") for _ in range(1000)]
    response = await service.client.post("/v1/events/batch", json={"events": items}, headers=headers)
    assert response.status_code == 200 and response.json()["created"] == 1000
    too_many = await service.client.post("/v1/events/batch", json={"events": [*items, body()]}, headers=headers)
    assert too_many.status_code == 413 and too_many.headers["content-type"] == "application/problem+json"

    async def published() -> bool:
        return await count(service, outbox) == 0

    await wait_until(published, timeout=30)


async def test_health_readiness_and_asyncapi(service):
    assert (await service.client.get("/healthz")).status_code == 200
    assert (await service.client.get("/readyz")).status_code == 200
    document = (await service.client.get("/asyncapi.json")).json()
    assert service.topic in {c["address"] for c in document["channels"].values()}


async def test_batch_of_valid_items_on_the_one_call_path(service, token):
    """Every item valid (the path validated in one call): duplicates, conflicts and organizers still
    answered per item, and each created event published with the state GET returns."""
    headers = {"Authorization": token(*PROVINCE)}
    admin = {"Authorization": token("hq", "HQ", "events:write admin")}
    first, second = body(), body()
    other = {**body(), "organizer": {"kind": "province", "code": "110000"}}
    items = [first, second, first, {**second, "papers": 2}, other]
    answer = (await service.client.post("/v1/events/batch", json={"events": items}, headers=headers)).json()
    assert [i["status"] for i in answer["items"]] == ["created", "created", "unchanged", "conflict", "rejected"]
    assert answer["items"][2]["id"] == answer["items"][0]["id"]
    assert answer["items"][4]["errors"][0]["loc"] == ["events", "4", "organizer"]

    by_admin = (await service.client.post("/v1/events/batch", json={"events": [other]}, headers=admin)).json()
    assert by_admin["items"][0]["status"] == "created"
    state = (await service.client.get(f"/v1/events/{by_admin['items'][0]['id']}", headers=headers)).json()
    assert state["organizer"] == {"kind": "province", "code": "110000"} and state["version"] == 1
    messages = await service.messages_for(state["id"], expected=1)
    assert messages[0]["value"]["data"] == state and messages[0]["value"]["type"] == "exchange.event.recorded"

    again = (await service.client.post("/v1/events/batch", json={"events": items}, headers=headers)).json()
    assert [i["status"] for i in again["items"]] == ["unchanged", "unchanged", "unchanged", "conflict", "rejected"]


async def test_bulk_insert_sends_values_holding_the_packing_separators_as_plain_arrays(service):
    """Validation keeps control characters out of every value, but the bulk statement must not
    depend on it: a value holding the separator (or the null mark) goes as plain arrays, intact."""
    from datetime import UTC, datetime

    from common.outbox import OutboxMessage
    from events.adapters.postgres import insert_new
    from events.application.ports import Actor
    from events.domain.event import Event
    from events.domain.model import EventCreate

    now = datetime.now(UTC)
    content = EventCreate.model_validate(body()).canonical_content()
    odd = [
        Event.record(
            event_id=uuid7_strings(1)[0],
            key=("province", "440000", ref),
            content={**content, "title": title},
            stamp=now.isoformat(),
        )
        for ref, title in ((f"sep-{uuid.uuid4()}", "a\x1fb"), (f"null-{uuid.uuid4()}", "\x1e"))
    ]
    store = service.app.state.events.store
    for event in odd:
        async with store.pool.connection() as connection:
            message = OutboxMessage(str(uuid.uuid4()), event.id, "{}", "{}")
            actor = Actor("province", "440000", False, "province:440000")
            inserted = await insert_new(connection, [event], [message], [actor], topic="t", now=now)
        assert inserted == {event.id}
        stored = (await store.find_by_keys([event.key]))[event.key]
        assert stored.state["title"] == event.state["title"] and stored.state["city"] == "Guangzhou"
    from events.adapters.postgres import _pack

    assert _pack(["a", None, "b"]) == "a\x1f\x1e\x1fb" and _pack(["a\x1fb"]) is None
