"""How long a durable commit can take on this machine's disk, whatever the code: 8 KiB written and
`fdatasync`ed every 2 ms (what PostgreSQL does for every commit's WAL), latencies summarised.

    uv run python bench/events/disk_probe.py [--seconds 10]

A p99 of a few milliseconds with stalls of hundreds means: at 500 requests/s, one stall of 100 ms
holds ~50 commits, i.e. 1 % of a 10-second run, so no durable implementation gets a p99 below the
stall length in that run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROBE_DIR = Path(__file__).resolve().parents[2] / ".local"  # the disk PostgreSQL's data lives on here


def probe(seconds: float = 10.0, interval: float = 0.002) -> dict[str, Any]:
    PROBE_DIR.mkdir(exist_ok=True)
    latencies: list[float] = []
    with tempfile.NamedTemporaryFile(dir=PROBE_DIR, prefix="disk_probe_") as handle:
        end = time.monotonic() + seconds
        block = b"x" * 8192
        while time.monotonic() < end:
            started = time.perf_counter()
            os.write(handle.fileno(), block)
            os.fdatasync(handle.fileno())
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(interval)
    latencies.sort()
    n = len(latencies)
    return {
        "seconds": seconds,
        "syncs": n,
        "p50_ms": latencies[n // 2],
        "p99_ms": latencies[int(n * 0.99)],
        "max_ms": latencies[-1],
        "stalls_over_30ms": sum(1 for v in latencies if v > 30),
        "stalls_over_100ms": sum(1 for v in latencies if v > 100),
    }


class StallWatcher:
    """The probe in a background thread (every 10 ms, so it adds little I/O) while something else
    runs: `with StallWatcher() as watcher: ...`, then `watcher.stalls` lists (unix time, ms) of every
    fdatasync over `threshold_ms`, to lay beside latency outliers."""

    def __init__(self, threshold_ms: float = 30.0) -> None:
        self.threshold_ms = threshold_ms
        self.stalls: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StallWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        PROBE_DIR.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=PROBE_DIR, prefix="disk_watch_") as handle:
            while not self._stop.wait(0.01):
                started = time.perf_counter()
                os.write(handle.fileno(), b"x" * 8192)
                os.fdatasync(handle.fileno())
                if (took := (time.perf_counter() - started) * 1000) > self.threshold_ms:
                    self.stalls.append((time.time(), round(took, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    print(json.dumps(probe(parser.parse_args().seconds), indent=2))


if __name__ == "__main__":
    main()
