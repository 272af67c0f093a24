"""The whole system under load, bounded: bench/system/load.py's 50 clients (provinces posting events,
societies syncing their talent pools, HQ reading metrics, dashboards holding the SSE stream) for 60 s
against `make run`'s four services on loopback. No error but the deliberate 422s; afterwards the checker
finds nothing (every acknowledged event and person change on its topic and in its service's list, every
region's figures of all years and of each year exact); every SSE connection held to the end. The whole
test — start-up with the demo load, the load, the checks, stopping — has BUDGET seconds (docs/reliability.md,
"Load"). The 5-minute run is `make bench-load`, its figures in docs/reliability.md."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURATION = 60  # seconds of load
BUDGET = 300  # seconds for the whole test (run_load keeps to it; the timeout enforces it)


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


@pytest.mark.timeout(BUDGET)
def test_fifty_clients_for_a_minute_meet_no_error_and_the_figures_stay_exact(tmp_path, kafka_bootstrap, topic_prefix):
    load = _load_module()
    offset = next(o for o in range(13_000, 15_000, 100) if all(_free(p + o) for p in (8001, 8002, 8003, 8004)))
    env = load.environment(str(tmp_path), offset, scale=0.05)
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EXCHANGE_TOPIC_PREFIX": f"{topic_prefix}load.",
        "REPORTING_CONSUMER_GROUP": f"{topic_prefix}load.reporting",
    }
    report = load.run_load(env, offset, DURATION, BUDGET)
    assert report.errors == [], report.markdown() + "\n" + "\n".join(report.errors[:20])
    assert report.events_acknowledged > 100
    assert report.deliberate > 0  # the invalid posts were made, and answered 422
    assert len(report.sse_messages) == load.MIX["sse"] and all(n > 0 for n in report.sse_messages)
    # every society synced, each sync answered with the counts its records must give; people were
    # created, changed and erased, and the checker found them all as the syncs left them
    assert report.talent_syncs >= 5 * load.MIX["syncer"], report.markdown()
    assert all(report.talent[outcome] > 0 for outcome in ("created", "updated", "removed")), report.talent
    assert "regions in" in report.checker and "lost: 0" in report.checker, report.checker
    endpoints = {row["endpoint"] for row in report.table()}
    assert {
        "POST /v1/events",
        "POST /v1/talent/sync (20)",
        "GET /v1/metrics?year=",
        "GET /v1/metrics/stream (open)",
    } <= endpoints
