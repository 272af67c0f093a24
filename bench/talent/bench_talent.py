"""The talent sync on PostgreSQL, each figure beside a baseline measured in the same run: a plain COPY of
the same rows into a table of the same columns (what the database alone needs to take them).

    uv run python bench/talent/bench_talent.py [--people 100000] [--out bench/talent/results.json]

1. first JSON sync of 10,000 records (all created); 2. the same again (all unchanged);
3. a full ndjson stream of 100,000 people, with the service process's peak RSS.
The service runs as its own process (`talent serve`), on a fresh database of the shared PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common.auth import mint_token
from common.testing.infra import postgres_admin_url
from common.testing.live import free_port
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
sys.path.insert(0, str(ROOT / "services" / "talent" / "tests"))
from conftest import record  # noqa: E402  (the tests' record builder: every field filled)


def _pg(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {"user": parsed.username, "password": parsed.password, "host": parsed.host, "port": parsed.port}


async def _copy_baseline(admin: dict[str, Any], database: str, records: list[dict[str, Any]]) -> float:
    """Seconds to COPY the records' columns into a plain table (no index but the key, no JSON parsing)."""
    connection = await asyncpg.connect(**admin, database=database)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS copy_baseline (id uuid PRIMARY KEY, external_id text, name text, "
            "name_en text, gender text, birth_year int, groups jsonb, country text, province text, affiliation text, "
            "email text, orcid text, fields jsonb, reserve bool, posts jsonb); TRUNCATE copy_baseline"
        )
        started = time.perf_counter()
        rows = [
            (
                uuid.uuid4(),
                r["external_id"],
                r["name"],
                r["name_en"],
                r["gender"],
                r["birth_year"],
                json.dumps(r["groups"]),
                r["country"],
                r["province"],
                r["affiliation"],
                r["email"],
                r["orcid"],
                json.dumps(r["fields"]),
                r["reserve"],
                json.dumps(r["posts"]),
            )
            for r in records
        ]
        await connection.copy_records_to_table("copy_baseline", records=rows)
        return time.perf_counter() - started
    finally:
        await connection.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _ndjson(count: int) -> AsyncIterator[bytes]:
    for start in range(0, count, 1000):
        yield "".join(json.dumps(record(n)) + "\n" for n in range(start, min(count, start + 1000))).encode()


async def _database(admin: dict[str, Any], statement: str) -> None:
    server = await asyncpg.connect(**admin, database="postgres")
    try:
        await server.execute(statement)
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    admin_url = postgres_admin_url()
    admin = _pg(admin_url)
    database = f"bench_talent_{uuid.uuid4().hex[:6]}"
    asyncio.run(_database(admin, f'CREATE DATABASE "{database}"'))
    url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    port = free_port()
    env = {
        **os.environ,
        "TALENT_DATABASE_URL": url,
        "EXCHANGE_JWT_SECRET": SECRET,
        "EXCHANGE_ENVIRONMENT": "test",
        "TALENT_LOG_LEVEL": "WARNING",
        "EXCHANGE_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
    }
    talent = str(Path(sys.executable).parent / "talent")
    subprocess.run([talent, "migrate"], env=env, check=True, cwd=ROOT)
    process = subprocess.Popen([talent, "serve", "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        results = asyncio.run(_measure(base, admin, database, process.pid, args.people))
    finally:
        process.terminate()
        process.wait(timeout=30)
        asyncio.run(_database(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


async def _measure(base: str, admin: dict[str, Any], database: str, service_pid: int, people: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    token = mint_token(secret=SECRET, org_kind="society", org_code="BENCH", scopes=["talent:sync"])
    headers = {"Authorization": f"Bearer {token}"}
    records = [record(n) for n in range(10_000)]
    body = json.dumps({"mode": "full", "records": records}).encode()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        for label in ("first_10k", "same_10k"):
            started = time.perf_counter()
            answer = await client.post("/v1/talent/sync", content=body, headers={"Content-Type": "application/json"})
            took = time.perf_counter() - started
            assert answer.status_code == 200, answer.text
            baseline = await _copy_baseline(admin, database, records)
            results[label] = {
                "seconds": round(took, 3),
                "copy_seconds": round(baseline, 3),
                "ratio": round(took / baseline, 1),
                "answer": {k: answer.json()[k] for k in ("created", "unchanged")},
            }
        peak = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_kib(service_pid))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        answer = await client.post(
            "/v1/talent/sync",
            params={"mode": "full"},
            content=_ndjson(people),
            headers={"Content-Type": "application/x-ndjson"},
        )
        took = time.perf_counter() - started
        done.set()
        await watcher
        assert answer.status_code == 200, answer.text
        many = [record(n) for n in range(people)]
        baseline = await _copy_baseline(admin, database, many)
        results[f"full_stream_{people}"] = {
            "seconds": round(took, 3),
            "copy_seconds": round(baseline, 3),
            "ratio": round(took / baseline, 1),
            "peak_rss_mib": round(peak / 1024, 1),
            "answer": {k: answer.json()[k] for k in ("created", "updated", "unchanged", "removed")},
        }
    return results


if __name__ == "__main__":
    main()
