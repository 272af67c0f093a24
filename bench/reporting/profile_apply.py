"""In-process profile of the projection's apply path without Kafka: envelope parse, decode, inbox and
apply in one transaction per batch, on a scratch PostgreSQL database. Prints µs per message per step.

    uv run python bench/reporting/profile_apply.py --events 100000 [--cprofile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.db import create_engine, session_factory
from common.inbox import claim_new
from common.kafka.consumer import Delivery
from common.runtime import run_async, tune_gc_for_batches
from harness import event_stream, run_id, scratch_database
from reporting.adapters.tables import inbox
from reporting.adapters.writers import projection_writer
from reporting.projections.handler import ProjectionHandler
from reporting.stream.changes_channel import NotifyAnnouncer


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--cprofile")
    args = parser.parse_args()
    messages, _expected, _finals = event_stream(args.events)
    values = [v for _k, v in messages]
    n = len(values)

    handler0 = ProjectionHandler(projection_writer)
    handler0.decode("t", values[0])  # loads the region catalogue
    tune_gc_for_batches()  # as the service does
    handler = ProjectionHandler(projection_writer, announcer=NotifyAnnouncer())
    profiler = cProfile.Profile() if args.cprofile else None
    spent = {"decode": 0.0, "delivery": 0.0, "inbox": 0.0, "apply": 0.0, "commit": 0.0}
    cpu = dict.fromkeys(spent, 0.0)  # this process's CPU only (PostgreSQL's is in the wall time)
    clock = time.perf_counter
    pclock = time.process_time
    async with scratch_database(f"prof_reporting_{run_id()}") as url:
        engine = create_engine(url)
        sessions = session_factory(engine)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for start in range(0, n, args.batch):
            t0, c0 = clock(), pclock()
            decoded = [handler.decode("t", v) for v in values[start : start + args.batch]]
            t1, c1 = clock(), pclock()
            deliveries = [Delivery("t", 0, 0, d.message_id, d.value) for d in decoded]
            t2, c2 = clock(), pclock()
            async with sessions() as session:
                async with session.begin():
                    new = await claim_new(session, inbox, {d.message_id: d.topic for d in deliveries})
                    t3, c3 = clock(), pclock()
                    await handler.apply(session, [d for d in deliveries if d.message_id in new])
                    t4, c4 = clock(), pclock()
                t5, c5 = clock(), pclock()
            steps = ("decode", "delivery", "inbox", "apply", "commit")
            walls, cpus = (t0, t1, t2, t3, t4, t5), (c0, c1, c2, c3, c4, c5)
            for i, key in enumerate(steps):
                spent[key] += walls[i + 1] - walls[i]
                cpu[key] += cpus[i + 1] - cpus[i]
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        await engine.dispose()
    print(f"{n:,} messages in {elapsed:.1f}s = {n / elapsed:,.0f} msg/s")
    for key, seconds in spent.items():
        print(f"  {key:9s} {seconds / n * 1e6:7.1f} µs/msg wall, {cpu[key] / n * 1e6:7.1f} µs/msg CPU here")


if __name__ == "__main__":
    run_async(main())  # uvloop, as the service runs under uvicorn
