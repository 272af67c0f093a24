"""The sync on real PostgreSQL and Kafka: created / updated / unchanged / removed, rejections, dry run,
erasure, reads by who may see what, and what reaches the topic (never a personal field)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from talent.domain.model import PERSONAL_FIELDS

from ..conftest import Service, record

PERSONAL_VALUES = ("测试人员", "Test Person", "@example.org", "0000-0002-1825-0097", "Institute ")


async def _sql(service: Service, statement: str, **params: Any) -> list[Any]:
    engine = create_async_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(statement), params)).all())
    finally:
        await engine.dispose()


async def _outbox_written(service: Service) -> int:
    ((last, called),) = await _sql(service, "SELECT last_value, is_called FROM outbox_id_seq")
    return int(last) if called else 0


async def test_sync_life_cycle_on_postgres(service: Service, token, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    cmes = {"Authorization": token("society", "CMES", "talent:sync")}
    records = [record(n) for n in range(1, 301)]
    first = await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": records}, headers=cmes)
    assert first.status_code == 200, first.text
    assert {k: first.json()[k] for k in ("created", "updated", "unchanged", "removed")} == {
        "created": 300,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
    }
    written = await _outbox_written(service)
    assert written == 300

    again = await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": records}, headers=cmes)
    assert again.json()["unchanged"] == 300 and await _outbox_written(service) == written  # nothing published

    records[0]["reserve"] = not records[0]["reserve"]
    changed = await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": records}, headers=cmes)
    assert (changed.json()["updated"], changed.json()["unchanged"]) == (1, 299)

    # dry run of a full sync: exact answer, nothing changed
    kept = [*records[:290], {"external_id": "P-1", "deleted": True}]
    dry = await service.client.post(
        "/v1/talent/sync", json={"mode": "full", "records": kept[1:], "dry_run": True}, headers=cmes
    )
    assert dry.status_code == 200 and dry.json()["removed"] == 11 and dry.json()["dry_run"] is True
    assert await _outbox_written(service) == written + 1
    full = await service.client.post("/v1/talent/sync", json={"mode": "full", "records": kept[1:]}, headers=cmes)
    assert {**dry.json(), "dry_run": False} == full.json()
    assert (await _sql(service, "SELECT count(*) FROM persons WHERE NOT deleted"))[0][0] == 289
    erased = await _sql(service, f"SELECT {', '.join(PERSONAL_FIELDS)}, external_id FROM persons WHERE deleted")
    assert len(erased) == 11 and all(all(v is None for v in row) for row in erased)
    audit = await _sql(service, "SELECT action, changes FROM audit_log ORDER BY id")
    assert sum(a == "person.erased" for a, _c in audit) == 11 and audit[-1][0] == "talent.sync.full"
    assert not any(v in json.dumps(c, ensure_ascii=False) for _a, c in audit for v in PERSONAL_VALUES)
    # the same record through the audit endpoint: admin only, and no personal value there either
    person = (await _sql(service, "SELECT entity_id FROM audit_log WHERE action = 'person.erased' LIMIT 1"))[0][0]
    url = f"/v1/talent/audit?entity=person&entity_id={person}"
    assert (await service.client.get(url, headers=cmes)).status_code == 403
    admin = {"Authorization": token("hq", "HQ", "admin")}
    entries = (await service.client.get(url, headers=admin)).json()
    assert "person.erased" in [e["action"] for e in entries["items"]]
    assert {e["actor"]["code"] for e in entries["items"]} == {"CMES"}  # the acting body
    assert not any(v in json.dumps(entries, ensure_ascii=False) for v in PERSONAL_VALUES)

    # the topic: every message, no personal field or value in any of them
    messages = await service.messages(expected=300 + 1 + 11)
    assert len(messages) >= 312
    types = [m["value"]["type"] for m in messages]
    assert types.count("exchange.person.removed") == 11
    for message in messages:
        assert (
            not set(PERSONAL_FIELDS) & set(message["value"]["data"]) and "external_id" not in message["value"]["data"]
        )
        assert not any(v.encode() in message["raw"] for v in PERSONAL_VALUES)
        assert message["key"] == message["value"]["subject"] == message["value"]["data"]["id"]

    # a person erased and synced again is a new person
    again_p1 = await service.client.post(
        "/v1/talent/sync", json={"mode": "delta", "records": [record(1)]}, headers=cmes
    )
    assert again_p1.json()["created"] == 1
    assert (await _sql(service, "SELECT count(*) FROM persons WHERE society = 'CMES'"))[0][0] == 301

    # no personal value in any log line of all of the above
    for line in caplog.records:
        text_ = line.getMessage()
        assert not any(v in text_ for v in PERSONAL_VALUES), text_


async def test_rejections_are_per_record(service: Service, token) -> None:
    cmes = {"Authorization": token("society", "CMES2", "talent:sync")}
    good = record()
    bad = [
        record(groups=["astronaut"]),
        record(posts=[{"organization": "X", "role": "chief", "start_date": "2020-01-01"}]),
        record(country="ZZ", province=None),
        record(country="DE"),
        record(birth_year=1700),
        record(posts=[{"organization": "X", "role": "member", "start_date": "2020-02-01", "end_date": "2020-01-01"}]),
        record(email="nobody"),
        record(orcid="0000-0002-1825-0098"),
        {**good},
    ]
    response = await service.client.post(
        "/v1/talent/sync", json={"mode": "delta", "records": [good, *bad]}, headers=cmes
    )
    body = response.json()
    assert response.status_code == 200 and body["created"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(1, 10))
    assert body["rejected"][-1]["errors"][0]["msg"] == "duplicate external_id in this request"
    assert all(r["external_id"] for r in body["rejected"])


async def test_authorisation_and_privacy_of_reads(service: Service, token) -> None:
    own = {"Authorization": token("society", "SOC-A", "talent:sync")}
    other = {"Authorization": token("society", "SOC-B", "talent:sync")}
    reader = {"Authorization": token("province", "440000", "reporting:read")}
    admin = {"Authorization": token("hq", "HQ", "admin")}
    await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": [record(7)]}, headers=own)
    page = (await service.client.get("/v1/talent/persons", params={"society": "SOC-A"}, headers=own)).json()
    (person,) = page["items"]
    assert person["name"] == "测试人员7" and person["email"] == "person7@example.org"
    for headers in (other, reader):
        public = (await service.client.get(f"/v1/talent/persons/{person['id']}", headers=headers)).json()
        assert public["society"] == "SOC-A" and not set(PERSONAL_FIELDS) & set(public)
        listed = (await service.client.get("/v1/talent/persons", params={"society": "SOC-A"}, headers=headers)).json()
        assert not set(PERSONAL_FIELDS) & set(listed["items"][0])
    assert (await service.client.get(f"/v1/talent/persons/{person['id']}", headers=admin)).json()["name"] == "测试人员7"
    # another society can neither change nor erase SOC-A's people
    assert (await service.client.delete(f"/v1/talent/persons/{person['id']}", headers=other)).status_code == 403
    named = await service.client.post(
        "/v1/talent/sync", json={"mode": "full", "records": [], "society": "SOC-A"}, headers=other
    )
    assert named.status_code == 403
    wiped = await service.client.post("/v1/talent/sync", json={"mode": "full", "records": []}, headers=other)
    assert wiped.json()["removed"] == 0
    assert (await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": []})).status_code == 401
    assert (
        await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": []}, headers=reader)
    ).status_code == 403
    # erasure by its own society: stale If-Match 412, then erased, publicly `deleted`
    stale = await service.client.delete(f"/v1/talent/persons/{person['id']}", headers={**own, "If-Match": '"9"'})
    assert stale.status_code == 412
    gone = await service.client.delete(f"/v1/talent/persons/{person['id']}", headers={**own, "If-Match": '"1"'})
    assert gone.status_code == 200 and gone.json()["deleted"] is True and gone.headers["ETag"] == '"2"'
    after = (await service.client.get(f"/v1/talent/persons/{person['id']}", headers=own)).json()
    assert after["deleted"] and all(after[f] is None for f in PERSONAL_FIELDS)
    assert (await service.client.get("/v1/talent/persons", params={"society": "SOC-A"}, headers=own)).json()[
        "items"
    ] == []


async def test_filters_and_posts(service: Service, token) -> None:
    headers = {"Authorization": token("society", "SOC-F", "talent:sync")}
    records = [
        record(100, groups=["youth"], reserve=True, posts=[]),
        record(
            101,
            groups=["engineer"],
            country="DE",
            province=None,
            posts=[
                {"organization": "ISC", "organization_country": "FR", "role": "president", "start_date": "2021-01-01"},
                {
                    "organization": "WFEO",
                    "organization_country": "FR",
                    "role": "member",
                    "start_date": "2019-01-01",
                    "end_date": "2020-01-01",
                },
            ],
        ),
    ]
    await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": records}, headers=headers)

    async def ids(**params: Any) -> list[str]:
        answer = await service.client.get("/v1/talent/persons", params={"society": "SOC-F", **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        return [p["external_id"] for p in answer.json()["items"]]

    assert await ids(group="youth") == ["P-100"]
    assert await ids(country="de") == ["P-101"]
    assert await ids(reserve="true") == ["P-100"]
    assert await ids(has_post="true") == ["P-101"] and await ids(has_post="false") == ["P-100"]
    assert await ids(organization="ISC") == ["P-101"]
    assert sorted(await ids(limit=1)) in (["P-100"], ["P-101"])
    posts = (
        await service.client.get("/v1/talent/posts", params={"society": "SOC-F", "role": "president"}, headers=headers)
    ).json()
    assert [(p["organization"], p["role"]) for p in posts["items"]] == [("ISC", "president")]
    assert "name" not in posts["items"][0]
    for params in ({"cursor": "not-a-cursor"}, {"country": "ıt"}, {"contry": "DE"}, {"organization": ["ISC", "X"]}):
        bad = await service.client.get("/v1/talent/persons", params=params, headers=headers)
        assert bad.status_code == 422, params
    bad = await service.client.get("/v1/talent/posts", params={"cursor": "A" * 22}, headers=headers)
    assert bad.status_code == 422


async def test_two_syncs_of_one_society_do_not_interleave(service: Service, token) -> None:
    headers = {"Authorization": token("society", "SOC-L", "talent:sync")}
    left = [record(n, affiliation="left") for n in range(1000, 1600)]
    right = [record(n, affiliation="right") for n in range(1000, 1600)]
    answers = await asyncio.gather(
        *(
            service.client.post("/v1/talent/sync", json={"mode": "full", "records": body}, headers=headers)
            for body in (left, right)
        )
    )
    assert all(a.status_code == 200 for a in answers)
    rows = await _sql(service, "SELECT DISTINCT affiliation FROM persons WHERE society = 'SOC-L' AND NOT deleted")
    assert len(rows) == 1  # one sync's pool whole, never a mix
    first, second = sorted((a.json() for a in answers), key=lambda a: a["created"], reverse=True)
    assert (first["created"], second["updated"]) == (600, 600)


async def test_body_limits_and_media(service: Service, token) -> None:
    headers = {"Authorization": token("society", "SOC-M", "talent:sync")}
    too_many = await service.client.post(
        "/v1/talent/sync", json={"mode": "delta", "records": [{"external_id": "x"}] * 10_001}, headers=headers
    )
    assert too_many.status_code == 413
    bad_mode = await service.client.post("/v1/talent/sync", json={"mode": "partial", "records": []}, headers=headers)
    assert bad_mode.status_code == 422
    extra = await service.client.post("/v1/talent/sync", json={"mode": "delta", "records": [], "x": 1}, headers=headers)
    assert extra.status_code == 422
    # as the OpenAPI says: `dry_run` a boolean, the query options checked whatever the body, no unknown ones
    for body, params in (
        ({"mode": "delta", "records": [], "dry_run": 0}, {}),
        ({"mode": "delta", "records": []}, {"society": ""}),
        ({"mode": "delta", "records": []}, {"dryrun": "true"}),
    ):
        refused = await service.client.post("/v1/talent/sync", json=body, params=params, headers=headers)
        assert refused.status_code == 422, (body, params)
    # any item is a record answered on its own: one that is not an object is rejected alone
    odd = await service.client.post(
        "/v1/talent/sync", json={"mode": "delta", "records": [[None], 0], "dry_run": True}, headers=headers
    )
    assert odd.status_code == 200 and [r["index"] for r in odd.json()["rejected"]] == [0, 1]
    xml = await service.client.post("/v1/talent/sync", content=b"<a/>", headers={**headers, "Content-Type": "text/xml"})
    assert xml.status_code == 415 and xml.headers["content-type"] == "application/problem+json"
