"""Events service benchmark, beside a baseline measured in the same run.

    uv run python bench/events/bench_events.py [--requests 10000] [--batches 200]

Starts (on loopback, one uvicorn worker each) the events service with its outbox relay publishing to
the local Kafka, and the baseline (bare FastAPI + raw asyncpg committing the same row and an outbox
row, no validation); both on fresh PostgreSQL databases migrated with the service's migrations. The
load generator runs in a separate process. Reports rates, latencies and server CPU-ms per 1,000
events; writes bench/events/results.json. Needs deploy/local/postgres.sh and kafka.sh running.
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
from pathlib import Path
from typing import Any

import disk_probe  # beside this script (its folder is on the path when run)
import httpx
from common.auth import mint_token
from common.db import LOOPBACK
from common.migrations import upgrade
from common.testing.infra import drop_database, postgres_admin_url
from common.testing.plugin import delete_topics_with_prefix
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")  # where the services publish
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVICE_DIR = ROOT / "services" / "events"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants alive now (uvicorn's worker processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += cpu_seconds(int(child))
    return total


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def create_databases(admin_url: str, names: list[str]) -> list[str]:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        for name in names:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return [make_url(admin_url).set(database=n).render_as_string(hide_password=False) for n in names]


async def drop_databases(admin_url: str, names: list[str]) -> None:
    """Drop the run's databases; retried, since backends of servers just stopped may still be exiting
    (a FORCE drop then fails to signal them)."""
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    for name in names:
        await drop_database(admin, name)
    await admin.dispose()


async def outbox_backlog(url: str) -> int:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM outbox"))
    await engine.dispose()
    return int(count or 0)


def wait_drained(url: str, limit: float = 180) -> float:
    """Seconds until the relay has published every committed message."""
    started = time.perf_counter()
    while asyncio.run(outbox_backlog(url)) > 0 and time.perf_counter() - started < limit:
        time.sleep(0.2)
    return time.perf_counter() - started


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"server on port {port} exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit(
        f"server on port {port} did not start: {process.stderr.read().decode()[-3000:] if process.stderr else ''}"
    )


def start_events(url: str, run: str, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`events serve` on a free port (relay in-process) against `url`, topics prefixed by the run; healthy."""
    port = free_port()
    env = {
        **os.environ,
        "EVENTS_DATABASE_URL": url,
        "EXCHANGE_JWT_SECRET": SECRET,
        "EXCHANGE_TOPIC_PREFIX": f"bench{run}.",
        "EVENTS_LOG_LEVEL": "WARNING",
        "EVENTS_RATE_LIMIT_PER_MINUTE": "0",  # a benchmark measures the service, not the limit
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "events.entrypoints.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(port, server)
    except BaseException:
        server.terminate()
        raise
    return server, port


def load(mode: str, port: int, token: str, pid: int, **options: Any) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "loadgen.py"), mode, "--port", str(port), "--token", token]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    before = cpu_seconds(pid)
    done = subprocess.run(command, capture_output=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_s"] = cpu_seconds(pid) - before
    return result


def per_thousand(result: dict[str, Any], events_per_request: int = 1) -> float:
    events = result["requests"] * events_per_request
    return float(result["server_cpu_s"] * 1000 / events * 1000)  # CPU-ms per 1,000 events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="single POSTs per closed-loop run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--open-rates", default="250,500", help="offered single-POST rates (requests/s)")
    parser.add_argument("--open-seconds", type=float, default=10)
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 in the batch run (10-20 s: steady)")
    # Three batch clients keep both cores busy: with two, the API process waits on PostgreSQL with
    # nothing to do and the machine is ~80 % busy.
    parser.add_argument("--batch-concurrency", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of ours and split (the baseline keeps one)"
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    admin_url = postgres_admin_url()
    names = [f"bench_{run}_events", f"bench_{run}_baseline", f"bench_{run}_split"]
    ours_url, baseline_url, split_url = asyncio.run(create_databases(admin_url, names))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for url in (ours_url, baseline_url, split_url):
            upgrade(url, SERVICE_DIR)
        ours_port, baseline_port, split_port = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "EVENTS_DATABASE_URL": ours_url,
            "EXCHANGE_JWT_SECRET": SECRET,
            "EXCHANGE_TOPIC_PREFIX": f"bench{run}.",
            "EVENTS_LOG_LEVEL": "WARNING",
            "EVENTS_RATE_LIMIT_PER_MINUTE": "0",  # a benchmark measures the service, not the limit
        }
        workers = ["--workers", str(args.workers)] if args.workers > 1 else []
        ours = subprocess.Popen(
            [sys.executable, "-m", "events.entrypoints.cli", "serve", "--port", str(ours_port), *workers],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(ours)
        # Configured as the service configures itself (events.config): no TLS to a loopback
        # PostgreSQL (asyncpg's default `sslmode=prefer` would encrypt it).
        baseline_dsn = make_url(baseline_url).set(drivername="postgresql")
        if baseline_dsn.host in LOOPBACK and not {"ssl", "sslmode"} & set(baseline_dsn.query):
            baseline_dsn = baseline_dsn.update_query_dict({"sslmode": "disable"})
        dsn = baseline_dsn.render_as_string(hide_password=False)
        baseline = subprocess.Popen(
            [sys.executable, str(HERE / "baseline_app.py"), "--port", str(baseline_port), "--dsn", dsn],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(baseline)
        # The same service deployed as an API worker without a relay, beside one relay process.
        split_env = {**env, "EVENTS_DATABASE_URL": split_url, "EVENTS_RELAY_ENABLED": "false"}
        split = subprocess.Popen(
            [sys.executable, "-m", "events.entrypoints.cli", "serve", "--port", str(split_port), *workers],
            env=split_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(split)
        relay = subprocess.Popen(
            [sys.executable, "-m", "events.entrypoints.cli", "relay"],
            env={**split_env, "EVENTS_RELAY_ENABLED": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(relay)
        wait_healthy(split_port, split)
        wait_healthy(ours_port, ours)
        wait_healthy(baseline_port, baseline)
        token = mint_token(secret=SECRET, org_kind="province", org_code="440000", scopes="events:write")

        results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "settings": vars(args)}
        print("warming up …", file=sys.stderr)
        for port, pid in ((ours_port, ours.pid), (baseline_port, baseline.pid), (split_port, split.pid)):
            load("closed", port, token, pid, requests=1000, concurrency=args.concurrency)
        load("batch", ours_port, token, ours.pid, requests=3, batch_size=1000, concurrency=1)

        print("single POST, closed loop …", file=sys.stderr)
        results["baseline_single"] = load(
            "closed", baseline_port, token, baseline.pid, requests=args.requests, concurrency=args.concurrency
        )
        results["ours_single"] = load(
            "closed", ours_port, token, ours.pid, requests=args.requests, concurrency=args.concurrency
        )

        relay_before = cpu_seconds(relay.pid)
        results["split_single"] = load(
            "closed", split_port, token, split.pid, requests=args.requests, concurrency=args.concurrency
        )
        results["split_relay_drain_s"] = wait_drained(split_url)
        results["split_single"]["relay_cpu_s"] = cpu_seconds(relay.pid) - relay_before

        # Let the relay publish the closed-loop run's backlog first: its large send batches hold the
        # event loop and would show up as latency of the open-loop requests.
        results["relay_drain_after_single_s"] = wait_drained(ours_url)
        # The disk's own fsync stalls, measured just before the open-loop phases (they bound any p99).
        results["disk_before_open"] = disk_probe.probe(10)
        print("single POST, open loop …", file=sys.stderr)
        for rate in [float(r) for r in args.open_rates.split(",")]:
            count = int(rate * args.open_seconds)
            for name, port, pid in (("ours", ours_port, ours.pid), ("baseline", baseline_port, baseline.pid)):
                results[f"{name}_open_{rate:.0f}"] = load(
                    "open", port, token, pid, requests=count, rate=rate, concurrency=64
                )

        print("batch …", file=sys.stderr)
        results["ours_batch"] = load(
            "batch",
            ours_port,
            token,
            ours.pid,
            requests=args.batches,
            batch_size=1000,
            concurrency=args.batch_concurrency,
        )
        results["relay_drain_after_batch_s"] = wait_drained(ours_url)
        relay_before = cpu_seconds(relay.pid)
        results["split_batch"] = load(
            "batch",
            split_port,
            token,
            split.pid,
            requests=args.batches,
            batch_size=1000,
            concurrency=args.batch_concurrency,
        )
        results["split_batch_relay_drain_s"] = wait_drained(split_url)
        results["split_batch"]["relay_cpu_s"] = cpu_seconds(relay.pid) - relay_before

        b, o, batch = results["baseline_single"], results["ours_single"], results["ours_batch"]
        batch["events_per_s"] = batch["rate"] * 1000
        summary = {
            "baseline_single_rate": b["rate"],
            "baseline_cpu_ms_per_1000": per_thousand(b),
            "ours_single_rate": o["rate"],
            "ours_cpu_ms_per_1000": per_thousand(o),
            "ratio_single": o["rate"] / b["rate"],
            "disk_fsync_p99_ms": results["disk_before_open"]["p99_ms"],
            "disk_fsync_max_ms": results["disk_before_open"]["max_ms"],
            "disk_fsync_stalls_over_30ms": results["disk_before_open"]["stalls_over_30ms"],
            **{
                f"{key}_p99_ms": value["p99_ms"]
                for key, value in results.items()
                if "_open_" in key and isinstance(value, dict)
            },
            "batch_events_per_s": batch["events_per_s"],
            "batch_cpu_ms_per_1000": per_thousand(batch, 1000),
            "split_single_rate": results["split_single"]["rate"],
            "split_single_api_cpu_ms_per_1000": per_thousand(results["split_single"]),
            "split_single_relay_cpu_ms_per_1000": results["split_single"]["relay_cpu_s"] * 1e6 / args.requests,
            "split_ratio_single": results["split_single"]["rate"] / b["rate"],
            "split_batch_events_per_s": results["split_batch"]["rate"] * 1000,
            "split_batch_api_cpu_ms_per_1000": per_thousand(results["split_batch"], 1000),
            "split_batch_relay_cpu_ms_per_1000": results["split_batch"]["relay_cpu_s"] * 1e3 / args.batches,
        }
        results["summary"] = summary
        (HERE / "results.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(summary, indent=2))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(drop_databases(admin_url, names))
        # a run leaves ~0.5 GB of messages; a broker with many such logs starts slowly
        asyncio.run(delete_topics_with_prefix(BOOTSTRAP, f"bench{run}."))


if __name__ == "__main__":
    main()
