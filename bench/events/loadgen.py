"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams (cheap per request, so it does
not starve the server of the machine's two cores). Loopback only; bounded in count and time.

Runs in its own process: `python bench/events/loadgen.py closed|open|batch ...`, prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from typing import Any

from events.domain.model import EVENT_EXAMPLE


def event_body(n: int, run: str) -> dict[str, Any]:
    return {**EVENT_EXAMPLE, "external_ref": f"{run}-{n}", "title": f"{EVENT_EXAMPLE['title']} {n}"}


def request_bytes(path: str, body: bytes, token: str, port: int) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, raw: bytes) -> int:
        assert self.reader and self.writer
        self.writer.write(raw)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def closed_loop(port: int, requests: list[bytes], concurrency: int, max_seconds: float) -> dict[str, Any]:
    """As fast as the server answers: `concurrency` connections, each one request at a time."""
    connections = [Connection(port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    queue = iter(requests)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds

    async def worker(connection: Connection) -> None:
        for raw in queue:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            status = await connection.send(raw)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    done = sum(statuses.values())
    return {
        "requests": done,
        "seconds": elapsed,
        "rate": done / elapsed,
        "statuses": statuses,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def open_loop(port: int, requests: list[bytes], rate: float, connections: int) -> dict[str, Any]:
    """Requests offered at a fixed rate whatever the answers; latency counted from the scheduled send
    time, so a slow answer cannot hide the queueing it causes (no coordinated omission)."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    opened = [Connection(port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in opened))
    for c in opened:
        pool.put_nowait(c)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.05

    async def one(scheduled: float, raw: bytes) -> None:
        connection = await pool.get()
        try:
            status = await connection.send(raw)
        finally:
            pool.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for n, raw in enumerate(requests):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, raw)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for c in opened:
        c.close()
    return {
        "requests": len(latencies),
        "offered_rate": rate,
        "achieved_rate": len(latencies) / elapsed,
        "statuses": statuses,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["closed", "open", "batch"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    counter = itertools.count()
    if args.mode == "batch":
        requests = [
            request_bytes(
                "/v1/events/batch",
                json.dumps({"events": [event_body(next(counter), run) for _ in range(args.batch_size)]}).encode(),
                args.token,
                args.port,
            )
            for _ in range(args.requests)
        ]
    else:
        requests = [
            request_bytes("/v1/events", json.dumps(event_body(next(counter), run)).encode(), args.token, args.port)
            for _ in range(args.requests)
        ]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - the plain loop only makes the generator costlier
        pass
    if args.mode == "open":
        result = asyncio.run(open_loop(args.port, requests, args.rate, args.concurrency))
    else:
        result = asyncio.run(closed_loop(args.port, requests, args.concurrency, args.max_seconds))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
