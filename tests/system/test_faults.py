"""Faults on the single-node setup, the whole system running as processes. Each test injects one fault
during a load of a few hundred events, then asserts with the checker (common.testing.checker) that
nothing acknowledged was lost, nothing counted twice and no key's versions went backwards, region by
region for every region, within its own time budget (docs/reliability.md, *Faults*). The broker and the
database that a test stops are its own (`restartable_broker`, `restartable_postgres`), never the shared
ones."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import pytest
from common.testing.plugin import read_topic
from harness import HQ, HqPartners, System, event_body

PROVINCES = ("440000", "310000", "510000", "110000")
COUNTRIES = ("DE", "JP", "BR", "KE", "TH", "US")
ROLES = ("president", "vice_president", "executive_board", "member")


def people(society: str, count: int, *, start: int = 0, changed: int = 0) -> list[dict[str, object]]:
    """A society's people `start`…`start+count-1`: at home in a province or abroad, with closed and open
    posts in organizations seated abroad; `changed` of them (from the first) renamed and moved to Shanghai."""
    out: list[dict[str, object]] = []
    for i in range(start, start + count):
        home = {"country": "CN", "province": PROVINCES[i % 4]} if i % 3 else {"country": COUNTRIES[i % 6]}
        name = f"P{i}"
        if i - start < changed:
            name, home = f"P{i} (moved)", {"country": "CN", "province": "310000"}
        posts = [
            {
                "organization": f"IO {i % 7}",
                "organization_country": COUNTRIES[(i + 1) % 6] if i % 5 else None,
                "role": ROLES[i % 4],
                "start_date": f"{2018 + i % 6}-03-01",
                "end_date": None if i % 2 else f"{2020 + i % 6}-02-28",
            }
        ] if i % 4 != 3 else []  # fmt: skip
        out.append({"external_id": f"{society}-{i}", "name": name, "groups": ["engineer"], "reserve": i % 5 == 0,
                    "posts": posts, **home})  # fmt: skip
    return out


@dataclass
class Load:
    """Posts events one by one until stopped (and at least `minimum`), remembering each answer."""

    system: System
    name: str
    minimum: int = 0
    pause: float = 0.05
    answers: list[tuple[float, int, dict[str, str], str]] = field(default_factory=list)  # time, status, headers, body
    failed: list[dict[str, object]] = field(default_factory=list)  # bodies to post again
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with self.system.client("events", "province", "440000", "events:write") as client:
            i = 0
            while not self.stop.is_set() or i < self.minimum:
                body = event_body(
                    f"{self.name}-{i}",
                    PROVINCES[i % len(PROVINCES)],
                    participants=10 + i,
                    foreign_participants=i % 7,
                    countries=[COUNTRIES[i % len(COUNTRIES)]],
                    type=("conference", "forum", "training")[i % 3],
                )
                answer = await self.system.write(client, "event", "POST", "/v1/events", json=body)
                self.answers.append((time.monotonic(), answer.status_code, dict(answer.headers), answer.text))
                if not answer.is_success:
                    self.failed.append(body)
                i += 1
                await asyncio.sleep(self.pause)

    def acknowledged_between(self, start: float, end: float) -> int:
        return sum(1 for t, status, _, _ in self.answers if start <= t <= end and status in (200, 201))


async def partners_until(partners: HqPartners, stop: asyncio.Event, minimum: int, pause: float) -> None:
    """HQ's partner writes, step after step, until stopped (and at least `minimum` steps)."""
    async with partners.system.client("partners", *HQ) as hq:
        while not stop.is_set() or len(partners.organizations) < minimum:
            await partners.step(hq)
            await asyncio.sleep(pause)


def assert_exact(report, budget_left: float) -> None:
    assert report.ok, str(report)
    assert report.regions_checked >= 70
    assert budget_left > 0, "the test went over its time budget"


@pytest.mark.timeout(300)
async def test_broker_stopped_30s_during_load(make_system, restartable_broker):
    """Budget 240 s. The services keep acknowledging writes while the broker is away (the outbox holds
    them), events and HQ's organizations and agreements alike, and reporting converges to the exact
    figures, partners' included, once it is back."""
    started = time.monotonic()
    system = await make_system("brk", bootstrap=restartable_broker.bootstrap)
    load = Load(system, "brk", minimum=300, pause=0.05)
    partners = HqPartners(system, "brk")
    tasks = [
        asyncio.create_task(load.run()),
        asyncio.create_task(partners_until(partners, load.stop, minimum=12, pause=0.5)),
    ]
    await asyncio.sleep(3)
    await asyncio.to_thread(restartable_broker.stop)
    down, steps_before = time.monotonic(), len(partners.organizations)
    await asyncio.sleep(30)
    up, steps_during = time.monotonic(), len(partners.organizations) - steps_before
    await asyncio.to_thread(restartable_broker.start)
    load.stop.set()
    await asyncio.gather(*tasks)
    assert {status for _, status, _, _ in load.answers} == {201}
    assert load.acknowledged_between(down, up) >= 50  # writes went on during the outage
    assert steps_during >= 5, steps_during  # so did HQ's partner writes
    report = await system.converged(120)
    assert_exact(report, 240 - (time.monotonic() - started))
    await partners.assert_in_figures()


@pytest.mark.timeout(300)
async def test_reporting_sigkilled_mid_stream_and_restarted(make_system):
    """Budget 200 s. Reporting is killed (SIGKILL, every process) while it applies a stream of 400
    events, HQ's organizations and agreements (two steps of `HqPartners` after each batch) and a society's
    sync of 150 people; while it is down the partner writes go on and the society re-syncs (30 changed) in
    full mode (20 removed) and erases one more; started again: exact figures, partners' and talent's
    included, nothing twice."""
    started = time.monotonic()
    system = await make_system("kill")
    reporting = system.services["reporting"]
    partners = HqPartners(system, "kill")
    async with (
        system.client("events", "province", "440000", "events:write") as client,
        system.client("talent", "society", "CMES", "talent:sync") as society,
        system.client("partners", *HQ) as hq,
    ):
        for batch in range(8):
            await partners.step(hq)
            events = [
                event_body(
                    f"kill-{batch}-{i}", PROVINCES[i % 4], participants=50 + i + batch, countries=[COUNTRIES[i % 6]]
                )
                for i in range(50)
            ]
            answer = await system.post_batch(client, events)
            assert answer.status_code == 200, answer.text
            assert {item["status"] for item in answer.json()["items"]} == {"created"}
            await partners.step(hq)
            if batch == 3:
                answer = await system.sync(society, "CMES", people("CMES", 150))
                assert answer.status_code == 200, answer.text
                await asyncio.sleep(0.3)  # reporting is applying what came so far
                await asyncio.to_thread(reporting.kill)
        answer = await system.sync(society, "CMES", people("CMES", 130, changed=30), mode="full")
        assert answer.status_code == 200 and answer.json()["removed"] == 20, answer.text
        answer = await system.erase(society, system.person_id("CMES", "CMES-40"))
        assert answer.status_code == 200, answer.text
    assert len([w for w in system.acknowledged if w.kind == "event"]) == 400
    assert len([w for w in system.acknowledged if w.kind == "person"]) == 150 + 30 + 20 + 1
    await asyncio.to_thread(reporting.start)
    await asyncio.to_thread(reporting.wait_ready)
    report = await system.converged(120)
    assert_exact(report, 200 - (time.monotonic() - started))
    await partners.assert_in_figures()


@pytest.mark.timeout(300)
async def test_events_database_restarted_during_load(make_system, restartable_postgres, topic_prefix):
    """Budget 200 s. While the events database is down, writes get 503 problem+json with Retry-After
    (never a 500); once it is back the failed ones are posted again, and nothing is half-written: every
    acknowledged write is on the topic and in the list, and the figures are exact."""
    started = time.monotonic()
    url = await restartable_postgres.create_database(f"{topic_prefix.strip('.')}_faults_events")
    system = await make_system("pgr", databases={"events": url})
    load = Load(system, "pgr", minimum=150, pause=0.05)
    task = asyncio.create_task(load.run())
    await asyncio.sleep(3)
    await asyncio.to_thread(restartable_postgres.stop, "fast")
    try:
        await asyncio.sleep(6)
    finally:
        await asyncio.to_thread(restartable_postgres.start)
    load.stop.set()
    await task
    statuses = {status for _, status, _, _ in load.answers}
    assert statuses == {201, 503}, statuses
    for _, status, headers, body in load.answers:
        if status == 503:
            assert headers["content-type"].startswith("application/problem+json"), body
            assert int(headers["retry-after"]) >= 1
            assert json.loads(body)["status"] == 503
    async with system.client("events", "province", "440000", "events:write") as client:
        for body in load.failed:  # the client retries, as Retry-After says
            answer = await system.write(client, "event", "POST", "/v1/events", json=body)
            assert answer.status_code in (200, 201), answer.text  # 200: it had been committed after all
    states = await system.states()
    assert len(states["event"]) == len(load.answers)  # every reference once, none twice, none half-written
    report = await system.converged(120)
    assert_exact(report, 200 - (time.monotonic() - started))


@pytest.mark.timeout(300)
async def test_duplicate_old_version_and_poison_messages(make_system):
    """Budget 150 s. A copy of a message already applied (same CloudEvent id), an older version under a
    new id, and a message that is not JSON are put on the events topic, and a copy and an older version
    of a person on the talent topic: the copies and old versions change nothing (the checker sees each
    old version as an order violation on its topic, and exact figures), the poison message goes to the
    dead-letter topic and the streams go on."""
    started = time.monotonic()
    system = await make_system("dup")
    async with (
        system.client("events", "province", "440000", "events:write") as client,
        system.client("talent", "society", "CMES", "talent:sync") as society,
    ):
        ids = []
        for i in range(30):
            answer = await system.write(client, "event", "POST", "/v1/events", json=event_body(f"dup-{i}", "440000"))
            ids.append(answer.json()["id"])
        target = ids[0]
        answer = await system.write(client, "event", "PATCH", f"/v1/events/{target}", json={"participants": 500})
        assert answer.status_code == 200, answer.text
        pool = people("CMES", 10)
        assert (await system.sync(society, "CMES", pool)).status_code == 200
        pool[0] = people("CMES", 1, changed=1)[0]  # the person moves: version 2
        assert (await system.sync(society, "CMES", pool)).status_code == 200
        person = system.person_id("CMES", "CMES-0")
        assert (await system.converged(60)).ok
        key, v2 = system.raw[(target, 2)]
        old = json.loads(system.raw[(target, 1)][1])
        old["id"] = str(uuid.uuid4())  # not a redelivery the inbox would know: only the version gate stops it
        poison = b"{not json"
        await system.produce("exchange.events.v1", (key, v2), (key, json.dumps(old).encode()), (key, poison))
        person_key, person_v2 = system.raw[(person, 2)]
        old_person = json.loads(system.raw[(person, 1)][1])
        old_person["id"] = str(uuid.uuid4())
        await system.produce(
            "exchange.talent.v1", (person_key, person_v2), (person_key, json.dumps(old_person).encode())
        )
        # A change after them on the same partition: once it is counted, they were all consumed.
        answer = await system.write(client, "event", "PATCH", f"/v1/events/{target}", json={"participants": 700})
        assert answer.status_code == 200, answer.text
        pool[0] = {**pool[0], "reserve": not pool[0]["reserve"]}  # version 3
        assert (await system.sync(society, "CMES", pool)).status_code == 200

    def settled(r) -> bool:
        return not (r.lost or r.counted_twice or r.not_counted)

    report = await system.converged(90, settled)
    assert settled(report), str(report)
    assert len(report.order_violations) == 2, report.order_violations
    assert f"event {target} version 1 after 2" in report.order_violations[0]
    assert f"person {person} version 1 after 2" in report.order_violations[1]
    assert report.topic_copies >= 2
    dead = await read_topic(system.bootstrap, f"{system.prefix}exchange.events.v1.dlq", expected=1, timeout=30)
    assert [(r.key, r.value) for r in dead] == [(key, poison)]
    assert system.unreadable == 1
    assert dict(dead[0].headers)["dlq.reason"] == b"invalid-envelope"
    assert time.monotonic() - started < 150
