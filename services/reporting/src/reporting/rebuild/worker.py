"""One process of a parallel `reporting rebuild`: replays its share of the partitions into the new
generation and answers with its counts.

    python -m reporting.rebuild.worker   < {"database_url": …, "partitions": [[topic, n, end], …], …}

The job comes as the first line on stdin (so the database URL and its password never show in `ps`);
the counts, the poison messages it skipped (named) and the partitions' final positions go to stdout as
one JSON object; logs go to stderr. A failure (a transient one: poison is skipped) exits non-zero and
the parent fails the rebuild. When stdin closes — the parent is gone, or gave up — the worker exits
at once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from aiokafka import TopicPartition
from common.db import create_engine, session_factory
from common.runtime import run_async

from reporting.rebuild.replay import Replayer, open_reader, prepare_process, progress_reporter, skipped_as_json

EXIT_PARENT_GONE = 75  # stdin closed before the work was done


async def replay_share(job: dict[str, Any]) -> dict[str, Any]:
    prepare_process()
    end = {TopicPartition(topic, int(partition)): int(offset) for topic, partition, offset in job["partitions"]}
    engine = create_engine(job["database_url"])
    consumer = open_reader(job["bootstrap_servers"], int(job["max_records"]))
    await consumer.start()
    try:
        consumer.assign(list(end))
        await consumer.seek_to_beginning(*end)
        beginnings = await consumer.beginning_offsets(list(end))
        share = sum(offset - int(beginnings[tp]) for tp, offset in end.items())
        progress = progress_reporter(_say, f"rebuild worker {os.getpid()}", share) if job.get("progress") else None
        replayer = Replayer(session_factory(engine), int(job["generation"]), consumer, progress)
        await replayer.until(end, int(job["max_records"]))
        positions = [[tp.topic, tp.partition, await consumer.position(tp)] for tp in end]
    finally:
        await consumer.stop()
        await engine.dispose()
    return {
        "messages": replayer.messages,
        "applied": replayer.applied,
        "invalid": replayer.invalid,
        "apply_failed": replayer.apply_failed,
        "skipped": skipped_as_json(replayer.skipped),
        "positions": positions,
    }


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(EXIT_PARENT_GONE)


def main() -> None:
    from common.observability import configure_logging

    configure_logging("reporting-rebuild-worker", "WARNING")
    job = json.loads(sys.stdin.readline())
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    counts = run_async(replay_share(job))
    sys.stdout.write(json.dumps(counts))


if __name__ == "__main__":
    main()
