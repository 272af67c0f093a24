"""Shared pieces of the reporting benchmarks: a scratch database, topics, a synthetic event stream
(with updates and cancellations) and its expected figures, a fast producer, and percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from common.db import without_loopback_tls
from common.ids import new_message_id, uuid7
from common.kafka import ensure_topics
from common.migrations import upgrade_async
from common.settings import ServiceSettings
from common.testing.infra import drop_database, postgres_admin_url
from common.testing.plugin import delete_topics_with_prefix
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
SERVICE_DIR = ROOT / "services" / "reporting"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PROVINCES = [
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000", "330000",
    "340000", "350000", "360000", "370000", "410000", "420000", "430000", "440000", "450000", "460000", "500000",
    "510000", "520000", "530000", "540000", "610000", "620000", "630000", "640000", "650000", "710000", "810000",
    "820000",
]  # fmt: skip
COUNTRIES = ["DE", "FR", "GB", "US", "JP", "KR", "TH", "VN", "SG", "KZ", "UZ", "RU", "BR", "NG", "EG", "SE", "FI", "IT"]
VERBOSE = bool(os.environ.get("BENCH_VERBOSE"))
TYPES = ["conference", "forum", "dialogue", "youth_camp", "training", "delegation_in"]


def run_id() -> str:
    return uuid.uuid4().hex[:8]


@asynccontextmanager
async def scratch_database(name: str, *, migrate: bool = True) -> Any:
    admin_url = postgres_admin_url()
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    # Like the services' settings do: no TLS to a loopback PostgreSQL (common.db.without_loopback_tls).
    url = without_loopback_tls(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    try:
        if migrate:
            await upgrade_async(url, SERVICE_DIR)
        yield url
    finally:
        await drop_database(admin, name)
        await admin.dispose()


_PREFIXES: list[str] = []  # of the topics this run made; `removing_topics` deletes them at the end


TOPIC_PARTITIONS: int = ServiceSettings.model_fields["topic_partitions"].default  # what the services create


async def make_topics(prefix: str, partitions: int = TOPIC_PARTITIONS) -> list[str]:
    topics = [f"{prefix}exchange.{t}.v1" for t in ("partners", "events", "talent")]
    _PREFIXES.append(prefix)
    await ensure_topics(BOOTSTRAP, [*topics, *(f"{t}.dlq" for t in topics)], partitions=partitions)
    return topics


async def removing_topics(main: Coroutine[Any, Any, None]) -> None:
    """Run a benchmark, then delete the topics it made: a million-event run leaves ~1 GB on the broker,
    and a broker holding many such logs takes minutes to start on this machine's disk."""
    try:
        await main
    finally:
        for prefix in _PREFIXES:
            await delete_topics_with_prefix(BOOTSTRAP, prefix)


@dataclass
class Expected:
    """The figures the stream must produce: per province (count, participants) for every year, and all."""

    by_region_year: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def add(self, region: str, year: int, participants: int, sign: int) -> None:
        for key in ((region, year), (region, 0), ("all", year), ("all", 0)):
            entry = self.by_region_year.setdefault(key, [0, 0])
            entry[0] += sign
            entry[1] += sign * participants


def event_payload(event_id: str, version: int, rng: random.Random, status: str = "active") -> dict[str, Any]:
    year = rng.choice([2021, 2022, 2023, 2024, 2025])
    province = rng.choice(PROVINCES)
    now = datetime.now(UTC).isoformat()
    return {
        "id": event_id,
        "organizer": {"kind": "province", "code": province},
        "external_ref": f"b-{event_id[:12]}",
        "title": "Benchmark event",
        "type": rng.choice(TYPES),
        "start_date": f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "end_date": f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "host_country": "CN",
        "host_province": province,
        "city": "X",
        "participants": rng.randint(10, 500),
        "foreign_participants": rng.randint(0, 10),
        "papers": rng.randint(0, 20),
        "countries": rng.sample(COUNTRIES, rng.randint(0, 3)),
        "partner_org_ids": [],
        "fields": [],
        "target_groups": [],
        "flagship": False,
        "status": status,
        "version": version,
        "created_at": now,
        "updated_at": now,
    }


def envelope_bytes(data: dict[str, Any]) -> bytes:
    kind = {"active": "recorded" if data["version"] == 1 else "updated", "cancelled": "cancelled"}[data["status"]]
    return json.dumps(
        {
            "specversion": "1.0",
            "id": new_message_id(),
            "source": "/events",
            "type": f"exchange.event.{kind}",
            "subject": data["id"],
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        },
        separators=(",", ":"),
    ).encode()


def event_stream(n: int, seed: int = 1) -> tuple[list[tuple[bytes, bytes]], Expected, list[dict[str, Any]]]:
    """n messages: ~85% new events, ~10% updates (new province/participants), ~5% cancellations.
    Returns (key, value) pairs, the expected figures and the final state of every event."""
    rng = random.Random(seed)
    messages: list[tuple[bytes, bytes]] = []
    final: dict[str, dict[str, Any]] = {}
    ids: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if ids and roll < 0.10:
            event_id = rng.choice(ids)
            previous = final[event_id]
            if previous["status"] == "cancelled":
                continue
            data = {**event_payload(event_id, previous["version"] + 1, rng), "start_date": previous["start_date"]}
        elif ids and roll < 0.15:
            event_id = rng.choice(ids)
            previous = final[event_id]
            data = {**previous, "version": previous["version"] + 1, "status": "cancelled"}
        else:
            event_id = str(uuid7())  # as the events service makes them
            ids.append(event_id)
            data = event_payload(event_id, 1, rng)
        final[event_id] = data
        messages.append((event_id.encode(), envelope_bytes(data)))
    expected = Expected()
    for data in final.values():
        if data["status"] == "active":
            expected.add(f"cn:{data['host_province']}", int(data["start_date"][:4]), data["participants"], +1)
    return messages, expected, list(final.values())


async def produce(topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Produce as fast as the client allows; returns seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=1024 * 1024, compression_type=None,
    )  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values_ms: list[float]) -> str:
    return (
        f"n={len(values_ms)} p50={percentile(values_ms, 50):.2f} ms p90={percentile(values_ms, 90):.2f} ms "
        f"p99={percentile(values_ms, 99):.2f} ms mean={statistics.fmean(values_ms):.2f} ms"
    )


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _die_with_parent() -> None:
    """A service started by a benchmark ends when the benchmark does, even when it is killed."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """A service run as its own process through its CLI (`events` or `reporting`)."""

    def __init__(self, name: str, env: dict[str, str], port: int) -> None:
        self.name = name
        self.env = {**os.environ, "EXCHANGE_RATE_LIMIT_PER_MINUTE": "0", **env}  # measure the service, not the limit
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *, migrate: bool = True) -> None:
        import sys

        cli = str(Path(sys.executable).parent / self.name)
        if migrate:
            process = await asyncio.create_subprocess_exec(cli, "migrate", env=self.env)
            if await process.wait() != 0:
                raise RuntimeError(f"{self.name} migrate failed")
        self.process = await asyncio.create_subprocess_exec(
            cli, "serve", "--port", str(self.port), env=self.env, preexec_fn=_die_with_parent,
            stdout=asyncio.subprocess.DEVNULL, stderr=None if VERBOSE else asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        import httpx

        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready")

    def rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 20)


class RawSSE:
    """A minimal SSE client on a raw socket (so thousands fit in one benchmark process)."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port, self.path, self.headers = host, port, path, headers
        self.messages: list[tuple[float, str, str]] = []  # (arrival, id, data)
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.keep_data = True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n{head}\r\n".encode()
        )
        await writer.drain()
        event_id = data = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                text_line = line.decode().rstrip("\r\n")
                if text_line.startswith(":") and "connected" in text_line:
                    self.connected.set()
                elif text_line.startswith("id:"):
                    event_id = text_line[3:].strip()
                elif text_line.startswith("data:"):
                    data = text_line[5:].strip()
                elif text_line == "" and event_id is not None:
                    self.messages.append((time.perf_counter(), event_id, data if self.keep_data else ""))
                    event_id = data = None
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class RawHTTPPool:
    """Keep-alive HTTP/1.1 connections with a hand-written client: a benchmark's own CPU cost per
    request stays far below httpx's, so the offered load is what the schedule says."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self._idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        reader, writer = await self._idle.get()
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
                + body
            )
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length) if length else b""
            return status, payload
        finally:
            self._idle.put_nowait((reader, writer))

    async def close(self) -> None:
        while not self._idle.empty():
            _reader, writer = self._idle.get_nowait()
            writer.close()
