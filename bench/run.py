"""`make bench`: run every benchmark, one after another (each prints its figures beside its baseline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS = [
    ["plumbing/relay.py"],
    ["events/bench_events.py"],
    ["reporting/apply_rate.py", "--events", "200000"],
    ["reporting/freshness.py", "--rate", "200"],
    ["reporting/sse_fanout.py", "--subscribers", "2000"],
]


def main() -> int:
    failures = 0
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args)} ===", flush=True)
        failures += subprocess.run([sys.executable, str(HERE / script), *args], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
