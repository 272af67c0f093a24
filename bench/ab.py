"""A/B of the hot paths between two checkouts, alternating, with a Markdown table at the end.

    uv run python bench/ab.py --base ../wt-base [--branch .] [--pairs 3] [--only events-batch,reporting]

Each benchmark runs from each checkout's own tree and virtualenv (`uv run --directory`), so each side
measures its own code. Pairs alternate the order (A B, B A, …) so that a drift of the machine's speed
within the run falls on both sides alike; the spread between runs of the same side is the noise a
difference must exceed before it means anything.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Figures = dict[str, float]


def _events(output: str) -> Figures:
    result = json.loads(output.strip().splitlines()[-1])
    api_cpu = float(result["cpu_ms_per_1000_events"]["API"])
    figures = {"events/s": float(result["events_per_s"]), "API CPU ms/1k": api_cpu}
    if "p50_ms" in result:
        figures |= {"p50 ms": float(result["p50_ms"]), "p99 ms": float(result["p99_ms"])}
    return figures


def _number(pattern: str, output: str) -> float:
    found = re.search(pattern, output)
    if found is None:
        raise ValueError(f"no match for {pattern!r} in the benchmark's output")
    return float(found.group(1).replace(",", ""))


def _reporting(output: str) -> Figures:
    for check in re.findall(r"exactness[^:]*: (\d+) region-year", output):
        if check != "0":
            raise ValueError("reporting figures differ from the expected ones")
    return {
        "apply msg/s": _number(r"projection apply .*?: ([\d,]+) msg/s", output),
        "rebuild msg/s": _number(r"reporting rebuild .*?\(([\d,]+)/s\)", output),
        "GET p50 ms": _number(r"over HTTP: n=\d+ p50=([\d.]+)", output),
    }


@dataclass(frozen=True)
class Benchmark:
    name: str
    command: list[str]
    parse: Callable[[str], Figures]


BENCHMARKS = [
    Benchmark("events-batch", ["bench/events/batch_only.py", "--batches", "150"], _events),
    Benchmark("events-single", ["bench/events/batch_only.py", "--closed", "10000"], _events),
    Benchmark("reporting", ["bench/reporting/apply_rate.py", "--events", "100000", "--rounds", "200"], _reporting),
    # A rebuild of 100,000 events lasts under ten seconds, where start-up costs blur the rate.
    Benchmark("reporting-1m", ["bench/reporting/apply_rate.py", "--events", "1000000", "--rounds", "200"], _reporting),
]


def run(checkout: Path, benchmark: Benchmark) -> Figures:
    command = ["uv", "run", "--frozen", "--directory", str(checkout), "python", *benchmark.command]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{benchmark.name} in {checkout} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return benchmark.parse(done.stdout)


def _values(values: list[float]) -> str:
    return ", ".join(f"{v:,.1f}" for v in values)


def table(name: str, runs: dict[str, list[Figures]]) -> str:
    keys = list(runs["base"][0])
    header = "| figure | base runs | branch runs | branch ÷ base (medians) |"
    lines = [f"### {name}", "", header, "| --- | --- | --- | ---: |"]
    for key in keys:
        base = [r[key] for r in runs["base"]]
        branch = [r[key] for r in runs["branch"]]
        ratio = statistics.median(branch) / statistics.median(base)
        lines.append(f"| {key} | {_values(base)} | {_values(branch)} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="checkout of the baseline")
    parser.add_argument("--branch", type=Path, default=Path.cwd(), help="checkout under test (default: here)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only.split(",")]
    sides = {"base": args.base.resolve(), "branch": args.branch.resolve()}
    report = []
    for benchmark in chosen:
        runs: dict[str, list[Figures]] = {"base": [], "branch": []}
        for pair in range(args.pairs):
            order = ["base", "branch"] if pair % 2 == 0 else ["branch", "base"]
            for side in order:
                figures = run(sides[side], benchmark)
                runs[side].append(figures)
                print(f"{benchmark.name} pair {pair + 1} {side}: {figures}", flush=True)
        report.append(table(benchmark.name, runs))
    print("\n\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
