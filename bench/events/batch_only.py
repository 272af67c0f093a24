"""The batch phase alone (or the closed loop of single POSTs), with the CPU of every process on the
machine per 1,000 events.

    uv run python bench/events/batch_only.py [--batches 150] [--concurrency 3] [--singles 0] [--env NAME=value]
    uv run python bench/events/batch_only.py --closed 20000     # single POSTs, 32 connections, instead

One fresh database, `events serve` (relay in-process) and the load generator's batch mode, as in
`bench_events.py`; besides the rate it prints each process's user+system CPU over the phase (the API,
PostgreSQL's backends summed, Kafka's JVM, …) and how busy the two cores were. For A/B comparisons
of the batch path: run it alternately from two checkouts, since this machine's speed drifts by ±30 %
within minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_events as bench  # the script's own folder, put on the path above
from common.auth import mint_token


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """(command name, user+system CPU seconds) of every process now running."""
    found: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / bench.TICKS)
    return found


def machine_ticks() -> tuple[int, int]:
    """(all, idle + iowait) jiffies of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=3)  # as bench_events.py's batch phase
    parser.add_argument("--singles", type=int, default=0, help="single POSTs before the batch phase (warm-up)")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server (repeatable)")
    parser.add_argument("--closed", type=int, default=0, help="measure N single POSTs (32 connections) instead")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    admin_url = bench.postgres_admin_url()
    names = [f"bench_{run}_batch"]
    [url] = asyncio.run(bench.create_databases(admin_url, names))
    server = None
    try:
        bench.upgrade(url, bench.SERVICE_DIR)
        extra_env = dict(item.split("=", 1) for item in args.env)
        server, port = bench.start_events(url, run, extra_env)
        token = mint_token(secret=bench.SECRET, org_kind="province", org_code="440000", scopes="events:write")
        bench.load("batch", port, token, server.pid, requests=5, batch_size=1000, concurrency=1)  # warm up
        if args.singles:
            bench.load("closed", port, token, server.pid, requests=args.singles, concurrency=32)
        relay_on = extra_env.get("EVENTS_RELAY_ENABLED", "true").lower() != "false"
        if relay_on:
            bench.wait_drained(url)

        before, ticks_before = cpu_by_process(), machine_ticks()
        if args.closed:
            result = bench.load("closed", port, token, server.pid, requests=args.closed, concurrency=32)
            thousands = args.closed / 1000
        else:
            result = bench.load(
                "batch", port, token, server.pid, requests=args.batches, batch_size=1000, concurrency=args.concurrency
            )
            thousands = args.batches
        after, ticks_after = cpu_by_process(), machine_ticks()
        drain = bench.wait_drained(url) if relay_on else None

        per_group: dict[str, float] = {}  # CPU seconds over the phase
        for pid, (name, cpu) in after.items():
            used = cpu - before.get(pid, (name, 0.0))[1]
            if used > 0.005:
                group = "API" if pid == server.pid else "postgres" if name.startswith("postgres") else name
                per_group[group] = per_group.get(group, 0.0) + used
        total, idle = ticks_after[0] - ticks_before[0], ticks_after[1] - ticks_before[1]
        print(
            json.dumps(
                {
                    "events_per_s": round(result["rate"] * (1 if args.closed else 1000)),
                    **(
                        {"p50_ms": round(result["p50_ms"], 2), "p99_ms": round(result["p99_ms"], 2)}
                        if args.closed
                        else {}
                    ),
                    "cpu_ms_per_1000_events": {
                        k: round(v * 1000 / thousands, 1) for k, v in sorted(per_group.items(), key=lambda kv: -kv[1])
                    },
                    "machine_busy": round((total - idle) / total, 3),
                    "relay_drain_s": drain,
                }
            )
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        asyncio.run(bench.drop_databases(admin_url, names))
        asyncio.run(bench.delete_topics_with_prefix(bench.BOOTSTRAP, f"bench{run}."))


if __name__ == "__main__":
    main()
