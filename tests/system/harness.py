"""The whole system as real processes for the system tests: each service started through its own CLI
(`<svc> migrate`, `<svc> serve --port --workers`), on its own PostgreSQL database, with the real broker;
clients that remember every write a service acknowledged; and `System.check()`, which hands those writes,
the topics read from offset 0, the services' list APIs and reporting's figures for every region to the
checker (common.testing.checker).

A talent sync answers counts, not ids and versions: `System.sync` keeps its own model of each society's
pool (what it sent and what that must have done: created at version 1, +1 per change, +1 on erasure),
checks the answer's counts against it, and records every change as an acknowledged `Write("person", …)`.
It learns a new person's id once, from the society's own list; a person that list never shows stays
under a placeholder key, which the checker reports as lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from common.auth import mint_token
from common.settings import association_today
from common.testing.checker import Message, Report, Write, check, years_of
from common.testing.live import free_port
from common.testing.plugin import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("events", "partners", "talent", "reporting")
TOPICS = {"events": "exchange.events.v1", "partners": "exchange.partners.v1", "talent": "exchange.talent.v1"}
KIND_OF_TYPE = {"event": "event", "organization": "organization", "agreement": "agreement", "person": "person"}


def bearer(kind: str, code: str, *scopes: str) -> dict[str, str]:
    token = mint_token(secret=TEST_SECRET, org_kind=kind, org_code=code, scopes=list(scopes), ttl=3600)
    return {"Authorization": f"Bearer {token}"}


HQ = ("hq", "HQ", "admin", "events:write", "partners:write", "reporting:read")


def cli(service: str) -> str:
    return str(Path(sys.executable).parent / service)


@dataclass
class Service:
    name: str
    env: dict[str, str]
    log: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        subprocess.run([cli(self.name), "migrate"], env=self.env, cwd=ROOT, check=True, capture_output=True)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [cli(self.name), "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: a signal reaches the uvicorn workers too
            )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.tail()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not up within {timeout}s\n{self.tail()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown hook runs."""
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class PersonModel:
    """What the client knows a person must be after the syncs it was answered: `content` None once erased."""

    key: str  # the person's id, or `<society>/<external_id>` until the society's list shows it
    version: int
    content: dict[str, Any] | None


class System:
    """`System(...)`, then `start()`; writes go through `write`/`post_batch`, which record every
    acknowledged one; `await check()` (or `converged()`) says what the checker found. `env` adds to the
    services' environment (shared variables, or prefixed ones such as `REPORTING_…`)."""

    def __init__(
        self,
        *,
        databases: dict[str, str],
        bootstrap: str,
        prefix: str,
        logs: Path,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.acknowledged: list[Write] = []
        self.unreadable = 0  # records on the topics that are not JSON (counted at each read)
        self.raw: dict[tuple[str, int], tuple[bytes, bytes]] = {}  # (key, version) → a record's key and value
        self.answers: list[int] = []  # every status code a write got
        self.people: dict[tuple[str, str], PersonModel] = {}  # (society, external_id) → the client's model
        common = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("EXCHANGE_", *(s.upper() for s in SERVICES)))},
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXCHANGE_TOPIC_PREFIX": prefix,
            "EXCHANGE_JWT_SECRET": TEST_SECRET,
            "EXCHANGE_ENVIRONMENT": "test",
            "REPORTING_CONSUMER_GROUP": f"{prefix}reporting",
            "PARTNERS_SCHEDULER_INTERVAL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.services = {
            name: Service(
                name,
                {**common, f"{name.upper()}_DATABASE_URL": databases[name]},
                logs / f"{name}.log",
                workers=workers,
            )
            for name in SERVICES
        }

    def start(self, names: Iterable[str] = SERVICES) -> None:
        names = list(names)
        for name in names:
            self.services[name].migrate()
        for name in names:
            self.services[name].start()
        for name in names:
            self.services[name].wait_ready()

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()

    def url(self, service: str) -> str:
        return self.services[service].url

    def client(self, service: str, *token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(service), headers=bearer(*token), timeout=30)

    # -- writes, recorded when acknowledged ----------------------------------------------------------

    def record(self, kind: str, response: httpx.Response) -> httpx.Response:
        self.answers.append(response.status_code)
        if response.is_success:
            body = response.json()
            self.acknowledged.append(Write(kind, str(body["id"]), int(body["version"])))
        return response

    async def write(self, client: httpx.AsyncClient, kind: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.record(kind, await client.request(method, path, **kw))

    async def post_batch(self, client: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
        """A batch answers per item; each created item is an acknowledged version 1."""
        response = await client.post("/v1/events/batch", json={"events": events})
        self.answers.append(response.status_code)
        if response.is_success:
            for item in response.json()["items"]:
                if item["status"] in ("created", "unchanged"):
                    self.acknowledged.append(Write("event", str(item["id"]), 1))
        return response

    # -- the three views, and the checker ------------------------------------------------------------

    async def sync(
        self,
        client: httpx.AsyncClient,
        society: str,
        records: list[dict[str, Any]],
        mode: str = "delta",
        *,
        for_society: bool = False,
    ) -> httpx.Response:
        """`POST /v1/talent/sync` with `client` (the society's token; hq's with `for_society`, naming it);
        when answered, every person it must have created, changed or erased is recorded as acknowledged."""
        body: dict[str, Any] = {"mode": mode, "records": records, **({"society": society} if for_society else {})}
        response = await client.post("/v1/talent/sync", json=body)
        self.answers.append(response.status_code)
        if not response.is_success:
            return response
        counts = {"created": 0, "updated": 0, "unchanged": 0, "removed": 0}
        changed: list[PersonModel] = []
        named: set[str] = set()
        for record in records:
            external_id = str(record["external_id"])
            named.add(external_id)
            content = {k: v for k, v in record.items() if k not in ("external_id", "deleted")}
            known = self.people.get((society, external_id))
            alive = known is not None and known.content is not None
            if record.get("deleted"):
                if known is not None and alive:
                    known.version, known.content = known.version + 1, None
                    counts["removed"] += 1
                    changed.append(known)
                else:
                    counts["unchanged"] += 1
            elif known is None or not alive:  # an erased person is never restored: a new one
                model = PersonModel(f"{society}/{external_id}", 1, content)
                self.people[(society, external_id)] = model
                counts["created"] += 1
                changed.append(model)
            elif known.content == content:
                counts["unchanged"] += 1
            else:
                known.version, known.content = known.version + 1, content
                counts["updated"] += 1
                changed.append(known)
        if mode == "full":
            for (owner, external_id), model in self.people.items():
                if owner == society and external_id not in named and model.content is not None:
                    model.version, model.content = model.version + 1, None
                    counts["removed"] += 1
                    changed.append(model)
        answer = response.json()
        assert answer["rejected"] == [], answer["rejected"]
        assert {k: answer[k] for k in counts} == counts, f"the sync's answer {answer} is not the model's {counts}"
        await self._learn_ids(society)
        self.acknowledged += [Write("person", model.key, model.version) for model in changed]
        return response

    async def _learn_ids(self, society: str) -> None:
        """New people's ids, from the society's own list (external_id → id)."""
        if all("/" not in m.key for (owner, _), m in self.people.items() if owner == society):
            return
        listed = await self._all(self.url("talent"), "/v1/talent/persons", {"society": society})
        by_external = {item["external_id"]: item["id"] for item in listed.values()}
        for (owner, external_id), model in self.people.items():
            if owner == society and "/" in model.key and external_id in by_external:
                model.key = by_external[external_id]

    async def erase(self, client: httpx.AsyncClient, person_id: str) -> httpx.Response:
        """`DELETE /v1/talent/persons/{id}`, recorded (and the client's model of the person erased)."""
        response = await self.write(client, "person", "DELETE", f"/v1/talent/persons/{person_id}")
        if response.is_success:
            for model in self.people.values():
                if model.key == person_id:
                    model.version, model.content = int(response.json()["version"]), None
        return response

    def person_id(self, society: str, external_id: str) -> str:
        return self.people[(society, external_id)].key

    async def _all(self, base: str, path: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every item of a paged list API, by id (hq's admin token: every field)."""
        out: dict[str, dict[str, Any]] = {}
        async with httpx.AsyncClient(headers=bearer(*HQ), timeout=30) as client:
            cursor = None
            while True:
                query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
                page = (await client.get(base + path, params=query)).raise_for_status().json()
                out.update({item["id"]: item for item in page["items"]})
                if not (cursor := page["next_cursor"]):
                    return out

    async def states(self) -> dict[str, dict[str, dict[str, Any]]]:
        """kind → id → final state, from each owning service's own list API; an erased person (which the
        list leaves out) as its own `GET` answers it (`deleted: true`), for each one acknowledged."""
        pages = {
            "event": (self.url("events"), "/v1/events", {}),
            "organization": (self.url("partners"), "/v1/partners/organizations", {"status": "active"}),
            "agreement": (self.url("partners"), "/v1/partners/agreements", {}),
            "person": (self.url("talent"), "/v1/talent/persons", {}),
        }
        out = {kind: await self._all(base, path, params) for kind, (base, path, params) in pages.items()}
        unlisted = {w.key for w in self.acknowledged if w.kind == "person" and w.key not in out["person"]}
        async with self.client("talent", *HQ) as client:
            for key in sorted(k for k in unlisted if "/" not in k):
                answer = await client.get(f"/v1/talent/persons/{key}")
                if answer.status_code == 200:
                    out["person"][key] = answer.json()
        return out

    async def messages(self) -> dict[str, list[Message]]:
        """Every message on the services' topics, read from offset 0 up to the end offsets of now."""
        out: dict[str, list[Message]] = {kind: [] for kind in KIND_OF_TYPE.values()}
        self.unreadable = 0
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([self.prefix + t for t in TOPICS.values()])
        finally:
            await admin.close()
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        await consumer.start()
        try:
            for topic in TOPICS.values():
                name = self.prefix + topic
                partitions = [TopicPartition(name, p) for p in range(counts.get(name, 0))]
                assert partitions, f"no topic {name}"
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await consumer.end_offsets(partitions)
                deadline = time.monotonic() + 60
                while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                    assert time.monotonic() < deadline, "topics not read within 60 s"
                    for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                        for record in records:
                            if record.offset >= ends[tp]:
                                continue
                            try:
                                value = json.loads(record.value)
                            except ValueError:  # not a CloudEvent: the consumers dead-letter it
                                self.unreadable += 1
                                continue
                            kind = value["type"].split(".")[1]
                            if kind in KIND_OF_TYPE:
                                data = value["data"]
                                key, version = str(data["id"]), int(data["version"])
                                message = Message(key, version, value["type"], tp.partition, record.offset, data)
                                self.raw[(key, version)] = (record.key, record.value)
                                out[KIND_OF_TYPE[kind]].append(message)
        finally:
            await consumer.stop()
        return out

    async def produce(self, topic: str, *records: tuple[bytes, bytes]) -> None:
        """Put records (key, value) straight onto one of the system's topics, as a faulty producer would."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(self.prefix + topic, value, key=key)
        finally:
            await producer.stop()

    async def figures(
        self, years: Iterable[int]
    ) -> tuple[list[str], dict[str, dict[str, Any]], dict[int, dict[str, dict[str, Any]]]]:
        """Every region's code, reporting's figures of all years, and those of each of `years`."""
        async with self.client("reporting", *HQ) as client:
            regions = [r["code"] for r in (await client.get("/v1/regions")).raise_for_status().json()["items"]]
            by_year: dict[int, dict[str, dict[str, Any]]] = {}
            for year in years:
                answer = (await client.get("/v1/metrics", params={"year": year})).raise_for_status().json()
                by_year[year] = {obj["region"]: obj for obj in answer["regions"]}
            metrics = (await client.get("/v1/metrics")).raise_for_status().json()["regions"]
        return regions, {obj["region"]: obj for obj in metrics}, by_year

    async def check(self, today: date | None = None) -> Report:
        today = today or association_today()
        states = await self.states()
        messages = await self.messages()
        regions, figures, by_year = await self.figures(years_of(states, today=today))
        return check(
            acknowledged=self.acknowledged,
            messages=messages,
            states=states,
            figures=figures,
            figures_by_year=by_year,
            regions=regions,
            today=today,
        )

    async def converged(self, timeout: float, done: Callable[[Report], bool] = lambda r: r.ok) -> Report:
        """The checker's report once reporting has caught up (or the last one at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            report = await self.check()
            if done(report) or time.monotonic() > deadline:
                return report
            await asyncio.sleep(1)


@dataclass
class HqPartners:
    """HQ's partner writes, one `step` at a time, each acknowledged one recorded through `system.write`:
    step `i` registers an organization (seated in one of six countries, or international), signs an
    agreement with it and the previous one (by HQ, or by a province HQ names; some inside the 90-day
    notice window), and in turn moves an earlier organization to another country, renews an earlier
    agreement out of the notice window, marks one flagship, or terminates one. `assert_in_figures` says
    reporting's `all` counts exactly these (the checker compares every region)."""

    system: System
    name: str
    organizations: list[str] = field(default_factory=list)
    agreements: list[tuple[str, date]] = field(default_factory=list)  # id, last day in force
    terminated: set[str] = field(default_factory=set)
    answers: list[int] = field(default_factory=list)

    async def _write(self, hq: httpx.AsyncClient, kind: str, method: str, path: str, body: Any) -> dict[str, Any]:
        answer = await self.system.write(hq, kind, method, path, json=body)
        self.answers.append(answer.status_code)
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.status_code} {answer.text}"
        return dict(answer.json())

    async def step(self, hq: httpx.AsyncClient) -> None:
        i, today = len(self.organizations), association_today()
        country = (None, "DE", "FR", "US", "BR", "KE", "TH")[i % 7]
        kind = "international_org" if country is None else "academy"
        body: dict[str, Any] = {"name": f"Org {self.name}-{i} {self.system.prefix}", "country": country, "kind": kind}
        self.organizations.append(
            (await self._write(hq, "organization", "POST", "/v1/partners/organizations", body))["id"]
        )
        expires = today + timedelta(days=40 if i % 3 == 0 else 400)
        body = {
            "external_ref": f"{self.name}-ag-{i}",
            "title": f"Agreement {self.name}-{i}",
            "kind": "mou",
            "partner_org_ids": self.organizations[-2:],
            "signed_on": f"{2021 + i % 5}-{1 + i % 12:02d}-15",
            "expires_on": expires.isoformat(),
            **({"signed_by": {"kind": "province", "code": ("440000", "310000")[i % 2]}} if i % 4 == 1 else {}),
        }
        self.agreements.append(
            ((await self._write(hq, "agreement", "POST", "/v1/partners/agreements", body))["id"], expires)
        )
        if i == 0:
            return
        earlier = i // 2  # each earlier one is changed twice, by two kinds of change
        org, (agreement, last_day) = self.organizations[earlier], self.agreements[earlier]
        if i % 4 == 1:
            moved = {"country": ("JP", "GB", "ZA")[i % 3]}
            await self._write(hq, "organization", "PATCH", f"/v1/partners/organizations/{org}", moved)
        elif agreement in self.terminated:
            return
        elif i % 4 == 2:
            renewed = last_day + timedelta(days=365)
            path = f"/v1/partners/agreements/{agreement}/renew"
            await self._write(hq, "agreement", "POST", path, {"expires_on": renewed.isoformat()})
            self.agreements[earlier] = (agreement, renewed)
        elif i % 4 == 3:
            await self._write(hq, "agreement", "PATCH", f"/v1/partners/agreements/{agreement}", {"flagship": True})
        else:
            path = f"/v1/partners/agreements/{agreement}/terminate"
            await self._write(hq, "agreement", "POST", path, {"reason": "ended early"})
            self.terminated.add(agreement)

    async def assert_in_figures(self) -> None:
        """Reporting's `all` of every year counts every organization and agreement written, the
        terminated ones no longer active."""
        assert self.organizations, "no partner writes"
        _, figures, _ = await self.system.figures([])
        partners = figures["all"]["partners"]
        assert partners["organizations"] == len(self.organizations), partners
        assert partners["agreements_signed"] == len(self.agreements), partners
        assert partners["agreements_active"] == len(self.agreements) - len(self.terminated), partners


def event_body(ref: str, province: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "title": f"Exchange {ref}",
        "type": "conference",
        "start_date": "2026-05-10",
        "end_date": "2026-05-12",
        "host_province": province,
        "city": "City",
        "participants": 120,
        "foreign_participants": 30,
        "papers": 12,
        "countries": ["DE", "JP"],
        **fields,
    }
