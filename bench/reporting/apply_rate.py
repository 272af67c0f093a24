"""Projection apply rate (inbox, exact figures, one transaction per batch) against a raw aiokafka
consume of the same messages, plus `GET /v1/metrics/regions/{code}` latency against a SQL GROUP BY over
the raw events, and `reporting rebuild` of the same topic — all in one run.

    uv run python bench/reporting/apply_rate.py --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.auth import mint_token
from common.db import create_engine, session_factory
from common.kafka.consumer import ConsumerRunner
from common.runtime import run_async
from harness import (
    BOOTSTRAP,
    TOPIC_PARTITIONS,
    RawHTTPPool,
    event_stream,
    make_topics,
    percentile,
    produce,
    removing_topics,
    run_id,
    scratch_database,
    summary,
)
from reporting.adapters.tables import inbox
from reporting.adapters.writers import projection_writer
from reporting.projections.handler import ProjectionHandler
from reporting.read.queries import region_objects
from reporting.rebuild.replay import assign_every_partition, prepare_process, rebuild
from reporting.stream.changes_channel import NotifyAnnouncer

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"


async def raw_consume(topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        # earliest: a partition assigned again after the seek (metadata arriving late) starts at 0, not at the end
        bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        partitions = await assign_every_partition(consumer, [topic])
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        idle_polls = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            idle_polls = 0 if batch else idle_polls + 1
            if idle_polls > 120:
                raise RuntimeError(f"raw consume stalled at {seen:,} of {n:,} messages")
            for records in batch.values():
                for record in records:
                    seen += 1
                    _ = record.value  # the raw consume does nothing with the value
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def projection_consume(url: str, topics: list[str], n: int, max_batch: int) -> tuple[float, int]:
    """(seconds, messages) from the end of the first applied batch to the last message: group join and
    the first fetch are not apply time, and the first batch's messages are not counted either."""
    engine = create_engine(url)
    handler = ProjectionHandler(projection_writer, announcer=NotifyAnnouncer())  # as the service on PostgreSQL
    runner = ConsumerRunner(
        service="bench-reporting", topics=topics, group_id=f"bench-{run_id()}", sessions=session_factory(engine),
        inbox=inbox, handler=handler, bootstrap_servers=BOOTSTRAP, max_batch=max_batch,
    )  # fmt: skip
    runner.start()
    started, first = None, 0
    try:
        while runner.state.processed + runner.state.duplicates < n:
            if started is None and runner.state.processed:
                started, first = time.perf_counter(), runner.state.processed + runner.state.duplicates
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await runner.stop()
        await engine.dispose()
    return elapsed, n - first


async def consume_forever(url: str, topics: list[str], group: str, max_batch: int) -> None:
    """One consumer process of `--processes K` (all in one group, each with its share of partitions)."""
    prepare_process()  # as a reporting process does at start
    engine = create_engine(url)
    runner = ConsumerRunner(
        service="bench-reporting", topics=topics, group_id=group, sessions=session_factory(engine),
        inbox=inbox, handler=ProjectionHandler(projection_writer, announcer=NotifyAnnouncer()),
        bootstrap_servers=BOOTSTRAP, max_batch=max_batch,
    )  # fmt: skip
    runner.start()
    await asyncio.Event().wait()


async def multiprocess_consume(
    url: str, topics: list[str], n: int, max_batch: int, processes: int
) -> tuple[float, int]:
    """K consumer processes in one group; progress read from the inbox (one row per applied message)."""
    group = f"bench-{run_id()}"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import apply_rate; from common.runtime import run_async; "
        "run_async(apply_rate.consume_forever(sys.argv[2], sys.argv[3].split(','), sys.argv[4], int(sys.argv[5])))"
    )
    here = str(HERE)
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, here, url, ",".join(topics), group, str(max_batch)
        )
        for _ in range(processes)
    ]
    engine = create_engine(url)
    started, first, done = None, 0, 0
    try:
        async with engine.connect() as connection:
            while done < n:
                done = int(await connection.scalar(text("SELECT count(*) FROM inbox")) or 0)
                await connection.commit()
                if started is None and done:
                    started, first = time.perf_counter(), done
                await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        for child in children:
            child.terminate()
            await child.wait()
        await engine.dispose()
    return elapsed, n - first


async def check_exact(url: str, expected) -> int:
    engine = create_engine(url)
    mismatches = 0
    try:
        async with session_factory(engine)() as session:
            for year in (0, 2021, 2022, 2023, 2024, 2025):
                regions = sorted({r for (r, y) in expected.by_region_year if y == year})
                for obj in await region_objects(session, regions, year):
                    want = expected.by_region_year[(obj["region"], year)]
                    if [obj["events"]["count"], obj["events"]["participants"]] != want:
                        mismatches += 1
    finally:
        await engine.dispose()
    return mismatches


async def load_raw_table(url: str, finals: list[dict]) -> None:
    """The same events as plain rows, for the GROUP BY baseline (what a naive report would query)."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg", "postgresql").replace("ssl=disable", "sslmode=disable")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE bench_raw_events (id text PRIMARY KEY, host_province text, start_year int, "
            "participants int, foreign_participants int, papers int, type text, status text)"
        )
        rows = [
            (
                d["id"], d["host_province"], int(d["start_date"][:4]), d["participants"], d["foreign_participants"],
                d["papers"], d["type"], d["status"],
            )
            for d in finals
        ]  # fmt: skip
        await connection.copy_records_to_table("bench_raw_events", records=rows)
        await connection.execute("CREATE INDEX ON bench_raw_events (host_province, start_year)")
        await connection.execute("ANALYZE bench_raw_events")
    finally:
        await connection.close()


async def group_by_latency(url: str, province: str, year: int, rounds: int) -> list[float]:
    engine = create_engine(url)
    query = text(
        "SELECT count(*), sum(participants), sum(foreign_participants), sum(papers), type FROM bench_raw_events "
        "WHERE host_province = :p AND start_year = :y AND status = 'active' GROUP BY ROLLUP(type)"
    )
    timings = []
    try:
        async with engine.connect() as connection:
            for _ in range(rounds):
                started = time.perf_counter()
                (await connection.execute(query, {"p": province, "y": year})).all()
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return timings


async def http_latency(url: str, topics_prefix: str, code: str, year: int, rounds: int) -> list[float]:
    port = 18004
    env = {
        **os.environ,
        "REPORTING_DATABASE_URL": url,
        "REPORTING_CONSUMER_ENABLED": "false",
        "REPORTING_TOPIC_PREFIX": topics_prefix,
        "REPORTING_JWT_SECRET": SECRET,
        "REPORTING_ENVIRONMENT": "test",
        "REPORTING_LOG_LEVEL": "WARNING",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from reporting.entrypoints.cli import main; main()", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    token = mint_token(secret=SECRET, org_kind="hq", org_code="HQ", scopes=["reporting:read"])
    timings = []
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/v1/metrics/regions/{code}?year={year}"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        # A hand-written keep-alive client: the figure is the server's latency, not httpx's (~1 ms here).
        pool = RawHTTPPool("127.0.0.1", port, 1)
        await pool.open()
        for _ in range(50):  # warm up
            await pool.request("GET", path, b"", headers)
        for _ in range(rounds):
            started = time.perf_counter()
            status, _body = await pool.request("GET", path, b"", headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert status == 200
        await pool.close()
    finally:
        server.terminate()
        await server.wait()
    return timings


async def main() -> None:
    prepare_process()  # as the reporting service does at start
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)  # the service's default (REPORTING_MAX_BATCH)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=1, help="consumer processes in the group")
    parser.add_argument(
        "--partitions",
        type=int,
        default=TOPIC_PARTITIONS,
        help="per topic (the services' default)",
    )
    parser.add_argument(
        "--rebuild-workers", type=int, default=2, help="processes of `reporting rebuild` (its default on PostgreSQL)"
    )
    args = parser.parse_args()
    rid = run_id()
    prefix = f"bench{rid}."
    topics = await make_topics(prefix, args.partitions)
    events_topic = topics[1]
    print(f"generating {args.events:,} messages ...", flush=True)
    messages, expected, finals = event_stream(args.events)
    n = len(messages)
    seconds = await produce(events_topic, messages)
    print(f"produced {n:,} messages in {seconds:.1f}s ({n / seconds:,.0f}/s)", flush=True)
    del messages
    raw = await raw_consume(events_topic, n)
    print(f"raw aiokafka consume: {n / raw:,.0f} msg/s ({raw:.1f}s)", flush=True)
    async with scratch_database(f"bench_reporting_{rid}") as url:
        if args.processes > 1:
            elapsed, counted = await multiprocess_consume(url, topics, n, args.batch, args.processes)
        else:
            elapsed, counted = await projection_consume(url, topics, n, args.batch)
        rate = counted / elapsed
        print(
            f"projection apply (inbox + state + deltas, one transaction per batch of ≤{args.batch}, "
            f"{args.processes} consumer process(es)): {rate:,.0f} msg/s ({counted:,} messages in {elapsed:.1f}s) "
            f"= {rate / (n / raw):.3f}× the raw consume rate",
            flush=True,
        )
        mismatches = await check_exact(url, expected)
        print(f"exactness: {mismatches} region-year figures differ from the expected ones", flush=True)

        await load_raw_table(url, finals)
        code, year = "cn:440000", 2024
        http = await http_latency(url, prefix, code, year, args.rounds)
        print(f"GET /v1/metrics/regions/{code}?year={year} over HTTP: {summary(http)}", flush=True)
        statement = await statement_latency(url, code, year, min(args.rounds, 500))
        print(f"  of which the read statement (in-process, autocommit connection): {summary(statement)}", flush=True)
        group_by = await group_by_latency(url, "440000", year, min(args.rounds, 300))
        print(f"SQL GROUP BY over the raw events (indexed): {summary(group_by)}", flush=True)
        print(f"ratio GROUP BY p50 / endpoint p50: {percentile(group_by, 50) / percentile(http, 50):.1f}×", flush=True)
        all_group_by = await group_by_all(url, rounds=20)
        print(f"SQL GROUP BY for every province and year (the /v1/metrics equivalent): {summary(all_group_by)}")

        engine = create_engine(url)
        try:
            report = await rebuild(
                session_factory(engine), bootstrap_servers=BOOTSTRAP, topics=topics, workers=args.rebuild_workers
            )
        finally:
            await engine.dispose()
        print(
            f"reporting rebuild ({args.rebuild_workers} process(es)): {report.messages:,} messages in "
            f"{report.seconds:.1f}s ({report.rate:,.0f}/s) "
            f"= {raw / report.seconds:.2f}× the raw consume rate",
            flush=True,
        )
        mismatches = await check_exact(url, expected)
        print(f"exactness after rebuild: {mismatches} region-year figures differ", flush=True)


async def statement_latency(url: str, code: str, year: int, rounds: int) -> list[float]:
    from datetime import date

    from reporting.read.queries import read_figures

    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    timings = []
    try:
        sessions = session_factory(engine)
        for _ in range(rounds):
            async with sessions() as session:
                started = time.perf_counter()
                await read_figures(session, [code], year, date.today())
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return timings


async def group_by_all(url: str, rounds: int) -> list[float]:
    engine = create_engine(url)
    query = text(
        "SELECT host_province, start_year, count(*), sum(participants) FROM bench_raw_events "
        "WHERE status = 'active' GROUP BY host_province, start_year"
    )
    timings = []
    try:
        async with engine.connect() as connection:
            for _ in range(rounds):
                started = time.perf_counter()
                (await connection.execute(query)).all()
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return timings


if __name__ == "__main__":
    run_async(removing_topics(main()))  # uvloop, as the service runs under uvicorn
