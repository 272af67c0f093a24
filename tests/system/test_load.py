"""The whole system under load, bounded: bench/system/load.py's 50 clients (provinces posting events,
societies syncing talent when its API is there, HQ reading metrics, dashboards holding the SSE stream) for
60 s against `make run`'s four services on loopback. No error but the deliberate 422s; reporting's figures
exact afterwards; every SSE connection held to the end. The 5-minute run is `make bench-load`, its figures
in docs/reliability.md ("Load")."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURATION = 60  # seconds; with start-up, the demo load and convergence the test stays under 5 minutes


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _load_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("system_load", ROOT / "bench" / "system" / "load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["system_load"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(480)
def test_fifty_clients_for_a_minute_meet_no_error_and_the_figures_stay_exact(tmp_path, kafka_bootstrap, topic_prefix):
    load = _load_module()
    offset = next(o for o in range(13_000, 15_000, 100) if all(_free(p + o) for p in (8001, 8002, 8003, 8004)))
    env = load.environment(str(tmp_path), offset, scale=0.05)
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": f"{topic_prefix}load.",
        "REPORTING_CONSUMER_GROUP": f"{topic_prefix}load.reporting",
    }
    report = load.run_load(env, offset, DURATION)
    assert report.errors == [], report.markdown()
    assert report.events_acknowledged > 100
    assert report.deliberate > 0  # the invalid posts were made, and answered 422
    assert len(report.sse_messages) == load.MIX["sse"] and all(n > 0 for n in report.sse_messages)
    endpoints = {row["endpoint"] for row in report.table()}
    assert {"POST /v1/events", "GET /v1/metrics?year=", "GET /v1/metrics/stream (open)"} <= endpoints
