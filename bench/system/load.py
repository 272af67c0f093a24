"""The whole system under load: 50 concurrent clients against the four services started by `make run`'s
script (deploy/local/run.py) on loopback, with a realistic mix, for a bounded time.

The mix (each client is one body with its own token, as in production):
- 20 provinces post events, one at a time (every 10th post a batch of 20; every 25th deliberately invalid
  — foreign participants above participants — which must answer 422, the only errors allowed);
- 5 national societies sync talent deltas of 20 people of their own pool (the demo's people, with each
  society's token as deploy/local/demo.py loads them): mostly changes to people already there (a move,
  another group, the reserve, a new post), some newcomers, now and then an erasure;
- 15 HQ readers read /v1/metrics?year=, one region's figures, /v1/targets;
- 10 dashboards hold the SSE stream (stream token from POST /v1/dashboard/session) for the whole run.
Each client waits 0.2–0.8 s between its requests (people and scripts, not a flood). At the end the
checker (common.testing.checker) must find nothing: every acknowledged event and person change is on its
topic and in its service's list, and reporting's figures of every region, of all years and of each year,
equal those recomputed from the services' final states; each person is as the syncs left them; each SSE
connection was held throughout and saw changes.

    uv run python bench/system/load.py --duration 300          # the full run (5 minutes), `make bench-load`
    uv run python bench/system/load.py --duration 60 --json out.json

Prints p50/p99 per endpoint (docs/reliability.md, section "Load"). The system test
tests/system/test_load.py runs the same for 60 s on a twentieth of the demo dataset, within its budget.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from common.settings import association_today
from common.testing.checker import Message, Write, check, years_of

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "deploy" / "local" / "run.py")]
PORTS = {"partners": 8001, "events": 8002, "talent": 8003, "reporting": 8004}
PROVINCES = [
    "110000", "120000", "130000", "310000", "320000", "330000", "340000", "350000", "360000", "370000",
    "410000", "420000", "430000", "440000", "450000", "500000", "510000", "530000", "610000", "650000",
]  # fmt: skip
SOCIETIES = ["CMES", "CCS", "CSEE", "CIE", "CSAA"]  # the demo's first five: one syncer each
MIX = {"poster": 20, "syncer": 5, "reader": 15, "sse": 10}
ADMIN = ("hq", "HQ", "admin events:write partners:write reporting:read")  # reads every list and figure
TOPICS = {"events": "exchange.events.v1", "partners": "exchange.partners.v1", "talent": "exchange.talent.v1"}
GROUPS = ("leading_scientist", "engineer", "young_scientist", "woman_scientist", "youth", "overseas_expert")
ROLES = ("member", "committee_chair", "executive_board", "vice_president")
ORGANIZATIONS = (("International Science Council (ISC)", "FR"), ("World Federation of Engineering Organizations", "FR"))
STOPPING = 20  # seconds the system gets to stop after SIGTERM (then SIGKILL)


@dataclass
class Report:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    deliberate: int = 0  # deliberately invalid requests answered as they should (422)
    events_acknowledged: int = 0  # events the API created (201, or "created" in a batch)
    sse_messages: list[int] = field(default_factory=list)
    talent: Counter[str] = field(default_factory=Counter)  # what the answered syncs did (created, updated, …)
    talent_syncs: int = 0  # syncs answered 200 with nothing rejected and the model's counts
    acknowledged: list[Write] = field(default_factory=list)  # the events the API created (id, version)
    checker: str = ""  # the checker's last summary

    def record(self, endpoint: str, started: float) -> None:
        self.latencies[endpoint].append((time.perf_counter() - started) * 1000)

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for endpoint, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            rows.append(
                {
                    "endpoint": endpoint,
                    "requests": len(ordered),
                    "p50_ms": round(statistics.median(ordered), 1),
                    "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
                    "max_ms": round(ordered[-1], 1),
                }
            )
        return rows

    def markdown(self) -> str:
        lines = ["| endpoint | requests | p50 ms | p99 ms | max ms |", "| --- | ---: | ---: | ---: | ---: |"]
        for row in self.table():
            lines.append(
                f"| `{row['endpoint']}` | {row['requests']} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |"
            )
        return "\n".join(lines)


def _event(rng: random.Random, province: str, valid: bool = True) -> dict[str, Any]:
    participants = rng.randint(20, 800)
    day = date(date.today().year, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
    return {
        "external_ref": f"load-{uuid.uuid4().hex}",
        "title": "Load test conference",
        "type": rng.choice(("conference", "forum", "training")),
        "start_date": day,
        "end_date": day,
        "host_province": province,
        "participants": participants,
        # invalid on purpose: more foreign participants than participants
        "foreign_participants": participants // 10 if valid else participants + 1,
        "papers": rng.randint(0, 100),
        "countries": [rng.choice(("DE", "US", "JP", "KZ", "BR", "ZA", "AU"))],
    }


def _content(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("external_id", "deleted")}


@dataclass
class Person:
    """What a society's syncs must have left of one person: `content` None once erased; `version` 1 when
    created, +1 per change (erasure included), as the talent contract says."""

    content: dict[str, Any] | None
    version: int = 1
    changed: bool = False  # by the load: an acknowledged write the checker looks for


class Pool:
    """One society's people as its syncs left them (external_id → Person), starting from the demo's pool.
    Only one client syncs a society, so the order of its syncs is the order they were answered in."""

    def __init__(self, society: str, people: list[dict[str, Any]]) -> None:
        self.society = society
        self.people = {str(p["external_id"]): Person(_content(p)) for p in people}
        self.newcomers = 0

    def delta(self, rng: random.Random, size: int = 20) -> list[dict[str, Any]]:
        """A realistic delta: mostly changes to people in the pool, an erasure now and then, a few newcomers;
        each person once, and every record a change (so the answer's counts are known)."""
        alive = [e for e, p in self.people.items() if p.content is not None]
        records: list[dict[str, Any]] = []
        for external_id in rng.sample(alive, min(len(alive), size - 4)):
            content = self.people[external_id].content
            assert content is not None
            if rng.random() < 0.04:
                records.append({"external_id": external_id, "deleted": True})
            else:
                records.append({"external_id": external_id, **self.changed(content, rng)})
        while len(records) < size:
            self.newcomers += 1
            records.append(
                {
                    "external_id": f"{self.society}-L{self.newcomers:05d}",
                    "name": f"Load person {self.newcomers}",
                    "gender": rng.choice(("F", "M")),
                    "birth_year": rng.randint(1955, 2000),
                    "groups": [rng.choice(GROUPS)],
                    "country": "CN",
                    "province": rng.choice(PROVINCES),
                    "reserve": False,
                    "posts": [],
                }
            )
        return records

    @staticmethod
    def changed(content: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """The person after a change: the reserve flag always turns, and a move, another group or a new post."""
        new = {**content, "reserve": not content.get("reserve")}
        pick = rng.random()
        if pick < 0.3 and new.get("country") == "CN":
            new["province"] = rng.choice(PROVINCES)
        elif pick < 0.6 and len(new.get("groups") or []) < len(GROUPS):
            new["groups"] = sorted({*(new.get("groups") or []), rng.choice(GROUPS)})
        elif pick < 0.9 and len(new.get("posts") or []) < 50:
            organization, seat = rng.choice(ORGANIZATIONS)
            start = f"{date.today().year - rng.randint(0, 3)}-{rng.randint(1, 12):02d}-01"
            post = {"organization": organization, "organization_country": seat, "role": rng.choice(ROLES)}
            new["posts"] = [*(new.get("posts") or []), {**post, "start_date": start, "end_date": None}]
        return new

    def apply(self, records: list[dict[str, Any]]) -> dict[str, int]:
        """Take an answered sync into the model; the counts its answer must give."""
        counts = {"created": 0, "updated": 0, "unchanged": 0, "removed": 0}
        for record in records:
            known = self.people.get(str(record["external_id"]))
            if record.get("deleted"):
                if known is not None and known.content is not None:
                    known.content, known.version, known.changed = None, known.version + 1, True
                    counts["removed"] += 1
                else:
                    counts["unchanged"] += 1
            elif known is None:
                self.people[str(record["external_id"])] = Person(_content(record), changed=True)
                counts["created"] += 1
            elif known.content == _content(record):
                counts["unchanged"] += 1
            else:
                known.content, known.version, known.changed = _content(record), known.version + 1, True
                counts["updated"] += 1
        return counts


class Load:
    def __init__(
        self,
        urls: dict[str, str],
        tokens: dict[str, str],
        duration: float,
        report: Report,
        pools: dict[str, Pool],
    ) -> None:
        self.urls, self.tokens, self.report, self.pools = urls, tokens, report, pools
        self.deadline = time.monotonic() + duration

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def pause(self, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0.2, 0.8))

    async def call(
        self, client: httpx.AsyncClient, endpoint: str, method: str, url: str, expect: tuple[int, ...], **kw: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.report.errors.append(f"{endpoint}: {type(exc).__name__} {exc}")
            return None
        self.report.record(endpoint, started)
        if response.status_code not in expect:
            self.report.errors.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
            return None
        return response

    async def poster(self, n: int) -> None:
        province = PROVINCES[n % len(PROVINCES)]
        rng = random.Random(f"poster{n}")
        headers = {"Authorization": f"Bearer {self.tokens[f'province:{province}']}"}
        base = self.urls["events"]
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            i = 0
            while self.running():
                i += 1
                if i % 25 == 0:
                    answer = await self.call(
                        client,
                        "POST /v1/events (invalid)",
                        "POST",
                        f"{base}/v1/events",
                        (422,),
                        json=_event(rng, province, False),
                    )
                    self.report.deliberate += answer is not None
                elif i % 10 == 0:
                    batch = [_event(rng, province) for _ in range(20)]
                    answer = await self.call(
                        client,
                        "POST /v1/events/batch (20)",
                        "POST",
                        f"{base}/v1/events/batch",
                        (200,),
                        json={"events": batch},
                    )
                    if answer is not None:
                        items = answer.json()["items"]
                        created = [item for item in items if item["status"] == "created"]
                        self.report.events_acknowledged += len(created)
                        self.report.acknowledged += [Write("event", str(item["id"]), 1) for item in created]
                        if len(created) != len(batch):
                            self.report.errors.append(f"batch: {[item['status'] for item in items]}")
                else:
                    answer = await self.call(
                        client, "POST /v1/events", "POST", f"{base}/v1/events", (201,), json=_event(rng, province)
                    )
                    if answer is not None:
                        body = answer.json()
                        self.report.events_acknowledged += 1
                        self.report.acknowledged.append(Write("event", str(body["id"]), int(body["version"])))
                await self.pause(rng)

    async def syncer(self, n: int) -> None:
        pool = self.pools[SOCIETIES[n % len(SOCIETIES)]]
        rng = random.Random(f"syncer{n}")
        headers = {"Authorization": f"Bearer {self.tokens[f'society:{pool.society}']}"}
        url = f"{self.urls['talent']}/v1/talent/sync"
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            while self.running():
                records = pool.delta(rng)
                body = {"mode": "delta", "records": records}
                answer = await self.call(client, "POST /v1/talent/sync (20)", "POST", url, (200,), json=body)
                if answer is not None:
                    result, expected = answer.json(), pool.apply(records)
                    if result["rejected"] or {k: result[k] for k in expected} != expected:
                        self.report.errors.append(f"talent sync of {pool.society}: {result}, expected {expected}")
                    else:
                        self.report.talent_syncs += 1
                        self.report.talent.update(expected)
                await self.pause(rng)

    async def reader(self, n: int) -> None:
        rng = random.Random(f"reader{n}")
        headers = {"Authorization": f"Bearer {self.tokens['reader']}"}
        base = self.urls["reporting"]
        year = date.today().year
        regions = ["all", "cn:440000", "cn:national", "m49:150", "group:asean", "group:bri", "m49:002"]
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            while self.running():
                choice = rng.random()
                if choice < 0.4:
                    await self.call(client, "GET /v1/metrics?year=", "GET", f"{base}/v1/metrics?year={year}", (200,))
                elif choice < 0.85:
                    region = rng.choice(regions)
                    await self.call(
                        client, "GET /v1/metrics/regions/{code}", "GET", f"{base}/v1/metrics/regions/{region}", (200,)
                    )
                else:
                    await self.call(client, "GET /v1/targets", "GET", f"{base}/v1/targets", (200,))
                await self.pause(rng)

    async def sse(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.tokens['reader']}"}
        base = self.urls["reporting"]
        messages = 0
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as client:
            answer = await self.call(
                client,
                "POST /v1/dashboard/session",
                "POST",
                f"{base}/v1/dashboard/session",
                (200, 201),
                headers=headers,
            )
            if answer is None:
                return
            params = {"access_token": answer.json()["access_token"]}
            started = time.perf_counter()
            try:
                async with client.stream("GET", f"{base}/v1/metrics/stream", params=params) as stream:
                    if stream.status_code != 200:
                        self.report.errors.append(f"stream: {stream.status_code}")
                        return
                    self.report.record("GET /v1/metrics/stream (open)", started)
                    async with asyncio.timeout(max(0.0, self.deadline - time.monotonic())):
                        async for line in stream.aiter_lines():
                            messages += line.startswith("event: metrics")
            except TimeoutError:
                pass  # held to the end of the run, as intended
            except httpx.HTTPError as exc:
                self.report.errors.append(f"stream dropped: {type(exc).__name__} {exc}")
            else:
                self.report.errors.append("stream ended before the run did")
        self.report.sse_messages.append(messages)

    async def run(self) -> None:
        clients = [self.poster(n) for n in range(MIX["poster"])]
        clients += [self.syncer(n) for n in range(MIX["syncer"])]
        clients += [self.reader(n) for n in range(MIX["reader"])]
        clients += [self.sse(n) for n in range(MIX["sse"])]
        await asyncio.gather(*clients)


def event_count(reporting: str, token: str) -> int:
    answer = httpx.get(f"{reporting}/v1/metrics/regions/all", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    answer.raise_for_status()
    return int(answer.json()["events"]["count"])


def demo_dataset(scale: float) -> Any:
    """The dataset `make run` loaded (deploy/local/demo.py, the same seed, this year)."""
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "local" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return module.generate(scale=scale, year=date.today().year, today=date.today())


async def _all(client: httpx.AsyncClient, url: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every item of a paged list API, by id."""
    out: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=query)).raise_for_status().json()
        out.update({item["id"]: item for item in page["items"]})
        if not (cursor := page["next_cursor"]):
            return out


async def _messages(bootstrap: str, prefix: str) -> dict[str, list[Message]]:
    """Every message on the three topics, from offset 0 up to the end offsets of now, by aggregate kind."""
    out: dict[str, list[Message]] = defaultdict(list)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([prefix + topic for topic in TOPICS.values()])
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        for topic in TOPICS.values():
            name = prefix + topic
            partitions = [TopicPartition(name, p) for p in range(counts.get(name, 0))]
            if not partitions:
                raise KafkaError(f"no topic {name}")
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        if record.offset >= ends[tp] or record.value is None:
                            continue
                        value = json.loads(record.value)
                        data = value["data"]
                        kind = value["type"].split(".")[1]
                        message = Message(
                            str(data["id"]), int(data["version"]), value["type"], tp.partition, record.offset
                        )
                        out[kind].append(message)
    finally:
        await consumer.stop()
    return out


def _same_person(content: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    def posts(items: Any) -> list[tuple[str, ...]]:
        fields = ("organization", "organization_country", "role", "start_date", "end_date")
        return sorted(tuple(str(post.get(f)) for f in fields) for post in items or [])

    return (
        set(content.get("groups") or []) == set(state.get("groups") or [])
        and (content.get("country"), content.get("province"), bool(content.get("reserve")))
        == (state.get("country"), state.get("province"), bool(state.get("reserve")))
        and posts(content.get("posts")) == posts(state.get("posts"))
    )


async def final_check(
    urls: dict[str, str], admin: str, bootstrap: str, prefix: str, report: Report, pools: dict[str, Pool]
) -> list[str]:
    """What is wrong after the load (nothing, when all is well): the checker given the events the API
    acknowledged and the people the syncs changed, the topics from offset 0, the services' list APIs and
    reporting's figures of every region, of all years and of each year; and each synced person as the
    society's syncs left them (an erased one not listed)."""
    problems: list[str] = []
    acknowledged = list(report.acknowledged)
    today = association_today()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {admin}"}, timeout=60) as client:
        states = {
            "event": await _all(client, f"{urls['events']}/v1/events", {}),
            "organization": await _all(client, f"{urls['partners']}/v1/partners/organizations", {"status": "active"}),
            "agreement": await _all(client, f"{urls['partners']}/v1/partners/agreements", {}),
            "person": await _all(client, f"{urls['talent']}/v1/talent/persons", {}),
        }
        listed = {(p["society"], p["external_id"]): p for p in states["person"].values()}
        for pool in pools.values():
            for external_id, person in pool.people.items():
                state = listed.get((pool.society, external_id))
                if person.content is None:
                    if state is not None:
                        problems.append(f"person {pool.society}/{external_id}: erased by a sync, still listed")
                elif state is None:
                    problems.append(f"person {pool.society}/{external_id}: synced, not listed")
                else:
                    if person.changed:
                        acknowledged.append(Write("person", state["id"], person.version))
                    if not _same_person(person.content, state):
                        problems.append(f"person {pool.society}/{external_id}: not as the last sync left it")
        regions = [
            r["code"] for r in (await client.get(f"{urls['reporting']}/v1/regions")).raise_for_status().json()["items"]
        ]
        figures = (await client.get(f"{urls['reporting']}/v1/metrics")).raise_for_status().json()["regions"]
        by_year = {}
        for year in years_of(states, today=today):
            answer = await client.get(f"{urls['reporting']}/v1/metrics", params={"year": year})
            by_year[year] = {obj["region"]: obj for obj in answer.raise_for_status().json()["regions"]}
    checked = check(
        acknowledged=acknowledged,
        messages=await _messages(bootstrap, prefix),
        states=states,
        figures={obj["region"]: obj for obj in figures},
        figures_by_year=by_year,
        regions=regions,
        today=today,
    )
    report.checker = str(checked)
    return problems + ([] if checked.ok else [f"checker: {checked}"])


def mint(env: dict[str, str], wanted: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """Tokens as `make run` mints them, minted in its environment (so with its signing key)."""
    script = (
        "import json, sys; sys.path.insert(0, 'deploy/local'); from run import token; "
        "print(json.dumps({k: token(*v) for k, v in json.loads(sys.argv[1]).items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(wanted)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


@contextmanager
def system(env: dict[str, str], startup_timeout: float = 300) -> Iterator[list[str]]:
    """`make run`'s script with `env`: yields once the demo dataset is loaded; stops it (SIGTERM) after."""
    process = subprocess.Popen(RUN, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None
    stream = process.stdout

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("make run's script ended:\n" + "".join(seen))
            seen.append(line)
            if "Ctrl-C or `make stop`" in line:
                break
        else:
            raise RuntimeError("the system did not start in time:\n" + "".join(seen))
        yield seen
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOPPING)
        except subprocess.TimeoutExpired:
            process.kill()


def _attempt(check_: Coroutine[Any, Any, list[str]]) -> list[str]:
    try:
        return asyncio.run(check_)
    except (httpx.HTTPError, KafkaError) as exc:  # the next attempt may succeed; the last one counts
        return [f"final check: {type(exc).__name__} {exc}"]


def run_load(env: dict[str, str], port_offset: int, duration: float, budget: float) -> Report:
    """Start the system with `env`, run the load for `duration` seconds, check the figures are exact; all
    within `budget` seconds, stopping the system included (what is left once the load ends goes to the
    checks: reporting catching up, then the checker finding nothing)."""
    end = time.monotonic() + budget - STOPPING - 10  # 10 s for what comes before and after (tokens, teardown)
    urls = {name: f"http://127.0.0.1:{port + port_offset}" for name, port in PORTS.items()}
    wanted = {f"province:{p}": ("province", p, "events:write") for p in PROVINCES}
    wanted |= {f"society:{s}": ("society", s, "talent:sync") for s in SOCIETIES}
    wanted["reader"] = ("hq", "HQ", "reporting:read")
    wanted["admin"] = ADMIN
    report = Report()
    dataset = demo_dataset(float(env.get("EXCHANGE_DEMO_SCALE") or 1.0))
    pools = {society: Pool(society, dataset.talent.get(society, [])) for society in SOCIETIES}
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    with system(env, startup_timeout=end - duration - time.monotonic()):
        tokens = mint(env, wanted)
        while (
            time.monotonic() < end - duration
            and event_count(urls["reporting"], tokens["reader"]) != dataset.event_count
        ):
            time.sleep(0.5)  # the demo load reaches reporting first
        asyncio.run(Load(urls, tokens, duration, report, pools).run())
        args = (urls, tokens["admin"], bootstrap, env["EXCHANGE_TOPIC_PREFIX"], report, pools)
        while (problems := _attempt(final_check(*args))) and time.monotonic() < end:
            time.sleep(1)  # reporting is still catching up
        report.errors += problems
    return report


def environment(run_dir: str, port_offset: int, scale: float) -> dict[str, str]:
    prefix = f"load{uuid.uuid4().hex[:6]}."
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EXCHANGE_", "EVENTS_", "REPORTING_", "PARTNERS_", "TALENT_"))
        },
        "EXCHANGE_RUN_DIR": run_dir,
        "EXCHANGE_PORT_OFFSET": str(port_offset),
        "EXCHANGE_TOPIC_PREFIX": prefix,
        "REPORTING_CONSUMER_GROUP": f"{prefix}reporting",
        "EXCHANGE_DEMO_SCALE": str(scale),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (at most 300)")
    parser.add_argument("--scale", type=float, default=0.1, help="of the demo dataset loaded first")
    parser.add_argument("--port-offset", type=int, default=20_000)
    parser.add_argument("--budget", type=float, help="seconds for everything (default: the duration + 300)")
    parser.add_argument("--json", type=Path, help="write the figures there")
    args = parser.parse_args()
    duration = min(args.duration, 300)
    with tempfile.TemporaryDirectory() as run_dir:
        env = environment(run_dir, args.port_offset, args.scale)
        report = run_load(env, args.port_offset, duration, args.budget or duration + 300)
    print(report.markdown())
    print(
        f"\nevents acknowledged: {report.events_acknowledged}; deliberate 422s: {report.deliberate}; "
        f"SSE messages per connection: {report.sse_messages}; talent syncs: {report.talent_syncs} "
        f"({', '.join(f'{k} {n}' for k, n in sorted(report.talent.items()))})\nchecker: {report.checker}"
    )
    print(f"errors: {len(report.errors)}", *report.errors[:20], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps({"table": report.table(), "errors": report.errors}, indent=2))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
