"""The whole system under load: 50 concurrent clients against the four services started by `make run`'s
script (deploy/local/run.py) on loopback, with a realistic mix, for a bounded time.

The mix (each client is one body with its own token, as in production):
- 20 provinces post events, one at a time (every 10th post a batch of 20; every 25th deliberately invalid
  — foreign participants above participants — which must answer 422, the only errors allowed);
- 5 national societies sync talent deltas of 20 people (when the talent API answers 404 on
  /v1/talent/sync, they read metrics instead);
- 15 HQ readers read /v1/metrics?year=, one region's figures, /v1/targets;
- 10 dashboards hold the SSE stream (stream token from POST /v1/dashboard/session) for the whole run.
Each client waits 0.2–0.8 s between its requests (people and scripts, not a flood). At the end the
figures must be exact: reporting's event count equals the demo's plus every event the API acknowledged,
and each SSE connection was held throughout and saw changes.

    uv run python bench/system/load.py --duration 300          # the full run (5 minutes), `make bench-load`
    uv run python bench/system/load.py --duration 60 --json out.json

Prints p50/p99 per endpoint (docs/reliability.md, section "Load"). The system test
tests/system/test_load.py runs the same for 60 s on a tenth of the demo dataset.
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
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "deploy" / "local" / "run.py")]
PORTS = {"partners": 8001, "events": 8002, "talent": 8003, "reporting": 8004}
PROVINCES = [
    "110000", "120000", "130000", "310000", "320000", "330000", "340000", "350000", "360000", "370000",
    "410000", "420000", "430000", "440000", "450000", "500000", "510000", "530000", "610000", "650000",
]  # fmt: skip
SOCIETIES = ["CMES", "CCS", "CSEE", "CIE", "CSAA"]
MIX = {"poster": 20, "syncer": 5, "reader": 15, "sse": 10}


@dataclass
class Report:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    deliberate: int = 0  # deliberately invalid requests answered as they should (422)
    events_acknowledged: int = 0  # events the API created (201, or "created" in a batch)
    sse_messages: list[int] = field(default_factory=list)
    talent: bool = True

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


class Load:
    def __init__(self, urls: dict[str, str], tokens: dict[str, str], duration: float, report: Report) -> None:
        self.urls, self.tokens, self.report = urls, tokens, report
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
                        statuses = [item["status"] for item in answer.json()["items"]]
                        self.report.events_acknowledged += statuses.count("created")
                        if statuses.count("created") != len(batch):
                            self.report.errors.append(f"batch: {statuses}")
                else:
                    answer = await self.call(
                        client, "POST /v1/events", "POST", f"{base}/v1/events", (201,), json=_event(rng, province)
                    )
                    self.report.events_acknowledged += answer is not None
                await self.pause(rng)

    async def syncer(self, n: int) -> None:
        society = SOCIETIES[n % len(SOCIETIES)]
        rng = random.Random(f"syncer{n}")
        headers = {"Authorization": f"Bearer {self.tokens[f'society:{society}']}"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            round_ = 0
            while self.running():
                round_ += 1
                records = [
                    {
                        "external_id": f"LOAD-{society}-{number:04d}",
                        "name": f"Load person {round_}",
                        "groups": [rng.choice(("engineer", "young_scientist", "woman_scientist"))],
                        "country": "CN",
                        "province": rng.choice(PROVINCES),
                        "posts": [],
                    }
                    for number in rng.sample(range(1, 401), 20)  # an external_id once per sync
                ]
                url = f"{self.urls['talent']}/v1/talent/sync"
                started = time.perf_counter()
                try:
                    response = await client.post(url, json={"mode": "delta", "records": records})
                except httpx.HTTPError as exc:
                    self.report.errors.append(f"talent sync: {type(exc).__name__} {exc}")
                    await self.pause(rng)
                    continue
                if response.status_code == 404:  # the talent API is not there: read metrics instead
                    self.report.talent = False
                    await self.reader(100 + n)
                    return
                self.report.record("POST /v1/talent/sync (20)", started)
                if response.status_code != 200 or response.json().get("rejected"):
                    self.report.errors.append(f"talent sync: {response.status_code} {response.text[:200]}")
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


def demo_events(scale: float) -> int:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "local" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return int(module.generate(scale=scale).event_count)


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
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def run_load(env: dict[str, str], port_offset: int, duration: float, converge_timeout: float = 120) -> Report:
    """Start the system with `env`, run the load for `duration` seconds, check the figures are exact."""
    urls = {name: f"http://127.0.0.1:{port + port_offset}" for name, port in PORTS.items()}
    wanted = {f"province:{p}": ("province", p, "events:write") for p in PROVINCES}
    wanted |= {f"society:{s}": ("society", s, "talent:sync") for s in SOCIETIES}
    wanted["reader"] = ("hq", "HQ", "reporting:read")
    report = Report()
    with system(env):
        tokens = mint(env, wanted)
        before = demo_events(float(env.get("EXCHANGE_DEMO_SCALE") or 1.0))
        deadline = time.monotonic() + converge_timeout
        while time.monotonic() < deadline and event_count(urls["reporting"], tokens["reader"]) != before:
            time.sleep(0.5)  # the demo load reaches reporting first
        asyncio.run(Load(urls, tokens, duration, report).run())
        expected = before + report.events_acknowledged
        counted = before
        while time.monotonic() < deadline + duration and counted != expected:
            counted = event_count(urls["reporting"], tokens["reader"])
            time.sleep(0.5)
        if counted != expected:
            report.errors.append(f"reporting counts {counted} events, expected {expected} (demo {before} + load)")
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
    parser.add_argument("--json", type=Path, help="write the figures there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        report = run_load(environment(run_dir, args.port_offset, args.scale), args.port_offset, min(args.duration, 300))
    print(report.markdown())
    print(
        f"\nevents acknowledged: {report.events_acknowledged}; deliberate 422s: {report.deliberate}; "
        f"SSE messages per connection: {report.sse_messages}; talent: {'synced' if report.talent else 'absent (404)'}"
    )
    print(f"errors: {len(report.errors)}", *report.errors[:20], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps({"table": report.table(), "errors": report.errors}, indent=2))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
