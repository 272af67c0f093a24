"""Open-loop rounds of single POSTs against the events service, each with the disk's fsync stalls seen
meanwhile, to tell the service's latency outliers from the disk's.

    uv run python bench/events/open_probe.py [--rates 250,500,250,500] [--seconds 10]

One fresh database, `events serve` (relay in-process), 10,000 single POSTs to fill the tables as
`bench_events.py` does before its open-loop phases, then one round per rate. Each round prints its
latency percentiles (from the scheduled send time) and the fdatasync stalls over 30 ms that a probe
thread saw during it (`disk_probe.StallWatcher`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_events as bench  # the script's own folder, put on the path above
from common.auth import mint_token
from disk_probe import StallWatcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="250,500,250,500", help="offered rates of the rounds (requests/s)")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    admin_url = bench.postgres_admin_url()
    names = [f"bench_{run}_open"]
    [url] = asyncio.run(bench.create_databases(admin_url, names))
    server = None
    try:
        bench.upgrade(url, bench.SERVICE_DIR)
        server, port = bench.start_events(url, run)
        token = mint_token(secret=bench.SECRET, org_kind="province", org_code="440000", scopes="events:write")
        bench.load("closed", port, token, server.pid, requests=10_000, concurrency=32)
        bench.wait_drained(url)
        for rate in (float(r) for r in args.rates.split(",")):
            with StallWatcher() as watcher:
                result = bench.load(
                    "open", port, token, server.pid, requests=int(rate * args.seconds), rate=rate, concurrency=64
                )
            summary = {k: round(result[k], 1) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
            print(json.dumps({"rate": rate, **summary, "disk_stalls_ms": [ms for _at, ms in watcher.stalls]}))
            bench.wait_drained(url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        asyncio.run(bench.drop_databases(admin_url, names))
        asyncio.run(bench.delete_topics_with_prefix(bench.BOOTSTRAP, f"bench{run}."))


if __name__ == "__main__":
    main()
