"""End-to-end scenarios on the whole system as real processes (each service's `serve`, real Kafka, real
PostgreSQL): after each step, reporting's figures equal the checker's recomputation from the services'
own list APIs for every region of `GET /v1/regions`, of all years and of every year present, and every
acknowledged write is on its topic, in version order per key. The scenarios: a province posts, updates and
cancels events; HQ records organizations and agreements that expire; a society syncs, re-syncs and
erases. Scale-out: the same with two processes of every service (`serve --workers 2`;
reporting's two are two consumers of one group)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from common.settings import association_today
from harness import HQ, System, event_body

CONVERGE = 60  # seconds for reporting to catch up after a step


async def assert_exact(system: System, step: str) -> None:
    report = await system.converged(CONVERGE)
    assert report.ok, f"after {step}:\n{report}\n" + "\n".join(s.tail(10) for s in system.services.values())
    assert report.regions_checked >= 70  # every region of GET /v1/regions (74 today), not a sample


async def province_events(system: System) -> None:
    """Guangdong posts 24 events (hosted at home, abroad, online), updates 6, cancels 4."""
    async with system.client("events", "province", "440000", "events:write") as gd:
        ids: list[str] = []
        for i in range(24):
            extra: dict[str, Any] = {}
            if i % 4 == 1:  # abroad: counts in Guangdong as organizer, and in Europe
                extra = {"host_province": None, "host_country": "FR", "countries": ["FR", "IT"]}
            elif i % 4 == 2:
                extra = {"type": "online", "host_province": None, "countries": ["TH", "VN"]}
            elif i % 4 == 3:
                extra = {"host_province": "310000", "participants": 300 + i, "countries": ["US"]}
            body = event_body(f"gd-{i}", "440000", **extra)
            answer = await system.write(gd, "event", "POST", "/v1/events", json=body)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        await assert_exact(system, "posting 24 events")
        for event_id in ids[:6]:
            answer = await system.write(
                gd, "event", "PATCH", f"/v1/events/{event_id}", json={"participants": 999, "countries": ["BR"]}
            )
            assert answer.status_code == 200, answer.text
        await assert_exact(system, "updating 6 events")
        for event_id in ids[6:10]:
            answer = await system.write(gd, "event", "DELETE", f"/v1/events/{event_id}")
            assert answer.status_code == 200, answer.text
        await assert_exact(system, "cancelling 4 events")


def person(i: int, **fields: Any) -> dict[str, Any]:
    """Society CMES's person `i`: people living at home (Guangdong, Shanghai, Beijing) and abroad (Germany,
    Kenya), in different pools, some in the reserve, holding closed posts (2019–2022) and open ones (since
    2024) in organizations seated in France, Switzerland, the US or nowhere."""
    where = [{"country": "CN", "province": p} for p in ("440000", "310000", "110000")]
    where += [{"country": "DE", "province": None}, {"country": "KE", "province": None}]
    groups = [["engineer"], ["young_scientist", "youth"], ["leading_scientist"], ["woman_scientist", "engineer"]]
    posts: list[dict[str, Any]] = []
    if i % 3 == 0:
        posts.append({"organization": "ISC", "organization_country": ("FR", "CH", "US", None)[i % 4],
                      "role": ("president", "executive_board", "member")[i // 3 % 3], "start_date": "2019-05-01",
                      "end_date": "2022-04-30"})  # fmt: skip
    if i % 4 == 1:
        posts.append({"organization": "UNESCO", "organization_country": "FR", "role": "vice_president",
                      "start_date": "2024-01-01", "end_date": None})  # fmt: skip
    return {
        "external_id": f"CMES-{i:04d}",
        "name": f"Person {i}",
        "groups": sorted(groups[i % len(groups)]),
        "reserve": i % 5 == 0,
        "posts": posts,
        **where[i % len(where)],
        **fields,
    }


async def society_talent(system: System) -> None:
    """Society CMES syncs 30 people, re-syncs them with 5 changed and 3 new (the unchanged 25 publish
    nothing), syncs in full mode without 3 of them (removed), erases one with DELETE and one with a
    `deleted` record; a second society, CAST-E, syncs 4 people of its own."""
    async with system.client("talent", "society", "CMES", "talent:sync") as cmes:
        people = [person(i) for i in range(30)]
        answer = await system.sync(cmes, "CMES", people)
        assert answer.status_code == 200, answer.text
        await assert_exact(system, "a society's first sync")
        for i in (2, 7, 11):  # moved abroad
            people[i] = person(i, country="JP", province=None)
        people[13] = person(13, groups=["overseas_expert"], reserve=True)  # another pool, and the reserve
        iupac = {"organization": "IUPAC", "organization_country": "CH", "role": "secretary_general",
                 "start_date": "2025-02-01", "end_date": "2026-01-31"}  # fmt: skip
        people[17] = {**people[17], "posts": [*people[17]["posts"], iupac]}  # a post more
        people += [person(i) for i in range(30, 33)]
        answer = await system.sync(cmes, "CMES", people)
        assert answer.status_code == 200, answer.text
        assert answer.json()["unchanged"] == 25 and answer.json()["updated"] == 5
        await assert_exact(system, "a re-sync with 5 changes and 3 new people")
        answer = await system.sync(cmes, "CMES", people[3:], mode="full")
        assert answer.status_code == 200, answer.text
        assert answer.json()["removed"] == 3
        await assert_exact(system, "a full sync without 3 people")
        answer = await system.erase(cmes, system.person_id("CMES", "CMES-0004"))
        assert answer.status_code == 200, answer.text
        answer = await system.sync(cmes, "CMES", [{"external_id": "CMES-0005", "deleted": True}])
        assert answer.status_code == 200 and answer.json()["removed"] == 1, answer.text
    async with system.client("talent", "society", "CAST-E", "talent:sync") as cast:
        answer = await system.sync(cast, "CAST-E", [person(i, external_id=f"E-{i}") for i in range(4)])
        assert answer.status_code == 200, answer.text
    await assert_exact(system, "two erasures and a second society's sync")


async def hq_partners(system: System) -> None:
    """HQ registers five organizations (one international) and four agreements — signed by HQ, by
    Shanghai, one expiring within 90 days and one already past its expiry, which the scheduler expires."""
    today = association_today()
    async with system.client("partners", *HQ) as hq:
        orgs = []
        for name, country in (("Acad DE", "DE"), ("Soc FR", "FR"), ("Union US", "US"), ("Acad SG", "SG"), ("IO", None)):
            kind = "international_org" if country is None else "academy"
            answer = await system.write(
                hq, "organization", "POST", "/v1/partners/organizations",
                json={"name": f"{name} {system.prefix}", "country": country, "kind": kind},
            )  # fmt: skip
            assert answer.status_code == 201, answer.text
            orgs.append(answer.json()["id"])
        await assert_exact(system, "registering organizations")
        agreements = [
            {"partner_org_ids": orgs[:2], "signed_on": "2024-03-01"},
            {"partner_org_ids": [orgs[2], orgs[4]], "signed_on": "2025-06-01",
             "signed_by": {"kind": "province", "code": "310000"}},
            {"partner_org_ids": [orgs[3]], "signed_on": "2023-01-01",
             "expires_on": (today + timedelta(days=40)).isoformat()},
            {"partner_org_ids": [orgs[0]], "signed_on": "2022-01-01",
             "expires_on": (today - timedelta(days=3)).isoformat()},
        ]  # fmt: skip
        expiring_id = ""
        for i, fields in enumerate(agreements):
            body = {"external_ref": f"ag-{i}", "title": f"Agreement {i}", "kind": "mou", **fields}
            answer = await system.write(hq, "agreement", "POST", "/v1/partners/agreements", json=body)
            assert answer.status_code == 201, answer.text
            expiring_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while (await hq.get(f"/v1/partners/agreements/{expiring_id}")).json()["status"] != "expired":
            assert time.monotonic() < deadline, "the scheduler did not expire the agreement within 30 s"
            await asyncio.sleep(0.5)
        await assert_exact(system, "signing agreements, one expired by the scheduler")


@pytest.mark.timeout(420)
async def test_scenarios_give_exact_figures_in_every_region(make_system):
    system = await make_system("scen")
    await province_events(system)
    await hq_partners(system)
    await society_talent(system)


@pytest.mark.timeout(480)
async def test_two_processes_of_every_service_give_the_same_exact_figures(make_system):
    system = await make_system("scale", workers=2)
    await province_events(system)
    await hq_partners(system)
    await society_talent(system)
