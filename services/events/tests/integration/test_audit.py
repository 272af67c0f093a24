"""Every write of an event is in the audit record (common.audit) with the acting body of its token, in
the transaction of the change, on PostgreSQL and on SQLite; a refused write leaves no entry; only
`admin` reads the record (`GET /v1/events/audit`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from common.db import create_engine
from common.migrations import upgrade_async
from events.application.ports import RECORDED_CHANGES
from sqlalchemy import text

from ..conftest import SERVICE_DIR, Service, body, migrated_database, running_service

GUANGDONG = ("province", "440000", "events:write")
BEIJING = ("province", "110000", "events:write")
ADMIN = ("hq", "HQ", "admin")


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def audited(
    request: pytest.FixtureRequest, make_database: Any, settings_factory: Any, kafka_bootstrap: str, tmp_path_factory
) -> AsyncIterator[Service]:
    if request.param == "postgresql":
        url = await migrated_database(make_database, "ev_audit")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('audit')}/events.db"
        await upgrade_async(url, SERVICE_DIR)
    async for running in running_service(settings_factory(url, f"audit_{request.param}"), kafka_bootstrap):
        yield running


async def _entries(service: Service, token: Any, event_id: str) -> list[dict[str, Any]]:
    answer = await service.client.get(
        "/v1/events/audit", params={"entity": "event", "entity_id": event_id}, headers={"Authorization": token(*ADMIN)}
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _actor(kind: str, code: str) -> dict[str, str]:
    return {"sub": f"{kind}:{code}", "kind": kind, "code": code}


async def test_a_single_post_is_recorded_with_its_acting_body(audited, token):
    title = 'Forum "Ω" \\ 论坛 😀 </script>'
    sent = body(host_province="440000", city=None, title=title, partner_org_ids=[str(uuid.uuid4())])
    created = await audited.client.post("/v1/events", json=sent, headers={"Authorization": token(*GUANGDONG)})
    assert created.status_code == 201, created.text
    state = created.json()
    [entry] = await _entries(audited, token, state["id"])
    assert entry["action"] == "record" and entry["entity"] == "event" and entry["entity_id"] == state["id"]
    assert entry["actor"] == _actor("province", "440000")
    assert entry["changes"] == RECORDED_CHANGES  # version 1 is the event's state and its later entries' `old`

    again = await audited.client.post("/v1/events", json=sent, headers={"Authorization": token(*GUANGDONG)})
    assert again.status_code == 200, again.text  # the same POST again writes nothing
    assert len(await _entries(audited, token, state["id"])) == 1


async def test_grouped_single_posts_each_carry_their_own_acting_body(audited, token):
    bodies = [(GUANGDONG, body(host_province="440000")) for _ in range(6)]
    bodies += [(BEIJING, body(host_province="110000")) for _ in range(6)]
    # hq acting for Guangdong: the acting body is hq, the organizer Guangdong
    bodies += [(ADMIN, {**body(host_province="440000"), "organizer": {"kind": "province", "code": "440000"}})]
    answers = await asyncio.gather(
        *[audited.client.post("/v1/events", json=b, headers={"Authorization": token(*who)}) for who, b in bodies]
    )
    assert [a.status_code for a in answers] == [201] * len(bodies), [a.text for a in answers]
    for (who, _b), answer in zip(bodies, answers, strict=True):
        [entry] = await _entries(audited, token, answer.json()["id"])
        assert entry["actor"] == _actor(who[0], who[1])
        assert entry["changes"] == RECORDED_CHANGES


async def test_a_batch_records_each_new_event_once_and_nothing_for_the_rest(audited, token):
    headers = {"Authorization": token(*BEIJING)}
    first = body(host_province="110000")
    sent = [first, body(host_province="110000"), {**body(), "start_date": "not a day"}]
    answer = await audited.client.post("/v1/events/batch", json={"events": sent}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert [i["status"] for i in answer.json()["items"]] == ["created", "created", "rejected"]
    for item, expected in zip(answer.json()["items"][:2], sent, strict=False):
        [entry] = await _entries(audited, token, item["id"])
        assert entry["action"] == "record" and entry["actor"] == _actor("province", "110000")
        state = (await audited.client.get(f"/v1/events/{item['id']}", headers=headers)).json()
        assert entry["changes"] == RECORDED_CHANGES and state["external_ref"] == expected["external_ref"]

    # resent, with one more: only the new one is written, and only it is recorded
    resent = await audited.client.post(
        "/v1/events/batch", json={"events": [first, body(host_province="110000")]}, headers=headers
    )
    assert [i["status"] for i in resent.json()["items"]] == ["unchanged", "created"]
    assert len(await _entries(audited, token, resent.json()["items"][0]["id"])) == 1
    assert len(await _entries(audited, token, resent.json()["items"][1]["id"])) == 1


async def test_a_change_and_a_cancellation_record_exactly_the_fields_they_changed(audited, token):
    owner = {"Authorization": token(*GUANGDONG)}
    state = (await audited.client.post("/v1/events", json=body(host_province="440000"), headers=owner)).json()
    url = f"/v1/events/{state['id']}"
    changed = await audited.client.patch(url, json={"papers": 7, "title": "A new title"}, headers=owner)
    assert changed.status_code == 200, changed.text
    unchanged = await audited.client.patch(url, json={"papers": 7}, headers=owner)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == 2  # no change: no entry
    admin = {"Authorization": token(*ADMIN), "If-Match": '"2"'}
    cancelled = await audited.client.delete(url, headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    again = await audited.client.delete(url, headers={"Authorization": token(*ADMIN)})
    assert again.status_code == 200  # cancelling twice changes nothing

    entries = await _entries(audited, token, state["id"])
    assert [e["action"] for e in entries] == ["record", "update", "cancel"]
    assert entries[1]["actor"] == _actor("province", "440000")
    assert entries[1]["changes"] == {
        "papers": {"old": state["papers"], "new": 7},
        "title": {"old": state["title"], "new": "A new title"},
    }
    assert entries[2]["actor"] == _actor("hq", "HQ")
    assert entries[2]["changes"] == {"status": {"old": "active", "new": "cancelled"}}


async def _audit_rows(service: Service) -> int:
    engine = create_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM audit_log"))).scalar_one())
    finally:
        await engine.dispose()


async def test_a_refused_write_leaves_no_entry(audited, token):
    owner = {"Authorization": token(*GUANGDONG)}
    state = (await audited.client.post("/v1/events", json=body(host_province="440000"), headers=owner)).json()
    url = f"/v1/events/{state['id']}"
    before = await _audit_rows(audited)
    attempts = [
        await audited.client.post("/v1/events", json={**body(), "participants": -1}, headers=owner),  # 422
        await audited.client.post("/v1/events/batch", json={"events": [{**body(), "papers": -1}]}, headers=owner),
        await audited.client.patch(url, json={"end_date": "2000-01-01"}, headers=owner),  # before the start: 422
        await audited.client.patch(url, json={"papers": 2}, headers={**owner, "If-Match": '"7"'}),  # 412
        await audited.client.delete(url, headers={**owner, "If-Match": '"7"'}),  # 412
        await audited.client.patch(url, json={"papers": 2}, headers={"Authorization": token(*BEIJING)}),  # 403
        await audited.client.delete(url, headers={"Authorization": token(*BEIJING)}),  # 403
    ]
    assert [a.status_code for a in attempts] == [422, 200, 422, 412, 412, 403, 403], [a.text for a in attempts]
    assert attempts[1].json()["rejected"] == 1
    assert await _audit_rows(audited) == before
    assert [e["action"] for e in await _entries(audited, token, state["id"])] == ["record"]


async def test_only_admin_reads_the_audit_record(audited, token):
    params = {"entity": "event", "entity_id": "anything"}
    for who in (GUANGDONG, ("hq", "HQ", "events:write"), ("hq", "HQ", "reporting:read")):
        answer = await audited.client.get("/v1/events/audit", params=params, headers={"Authorization": token(*who)})
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await audited.client.get("/v1/events/audit", params=params)).status_code == 401
    admin = await audited.client.get("/v1/events/audit", params=params, headers={"Authorization": token(*ADMIN)})
    assert admin.status_code == 200 and admin.json() == {"items": [], "next_cursor": None}
    # `audit` is no event id: other methods on it are not allowed, not an invalid id
    assert (
        await audited.client.patch("/v1/events/audit", json={}, headers={"Authorization": token(*ADMIN)})
    ).status_code == 405


async def test_a_control_character_in_the_audit_query_is_refused_as_the_document_says(audited, token):
    document = audited.app.openapi()["paths"]["/v1/events/audit"]["get"]["parameters"]
    assert all("pattern" in p["schema"] for p in document if p["name"] in ("entity", "entity_id"))
    for params in ({"entity": "event", "entity_id": "\x00"}, {"entity": "\x1f", "entity_id": "x"}):
        answer = await audited.client.get("/v1/events/audit", params=params, headers={"Authorization": token(*ADMIN)})
        assert answer.status_code == 422 and answer.json()["errors"][0]["loc"][0] == "query", answer.text
