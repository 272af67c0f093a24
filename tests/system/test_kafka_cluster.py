"""A three-broker Kafka cluster (deploy/local/kafka-cluster.sh: three KRaft broker+controller nodes in one
quorum), topics with replication factor 3 and min.insync.replicas 2 as in production; one broker is
killed (kill -9) during a load of 5,000 events, interleaved with HQ's organization and agreement writes
(a step of `HqPartners` before each batch), and started again: the checker finds nothing lost, nothing
counted twice and no key's versions going backwards, partners' figures included. Budget 420 s (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from common.testing.live import free_port
from harness import HQ, HqPartners, event_body

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "kafka-cluster.sh"
EVENTS = 5_000
BATCH = 250


class Cluster:
    def __init__(self) -> None:
        ports: set[int] = set()
        while len(ports) < 6:  # six distinct free ports, none of them the shared broker's 9092/9093
            ports.add(free_port())
        chosen = sorted(ports)
        self.ports, self.controller_ports = chosen[:3], chosen[3:]
        self.dir = Path(tempfile.mkdtemp(prefix="kafka-cluster-"))
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_PORTS": ",".join(map(str, self.ports)),
            "KAFKA_CLUSTER_CONTROLLER_PORTS": ",".join(map(str, self.controller_ports)),
            "KAFKA_CLUSTER_DIR": str(self.dir),
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def run(self, *args: str) -> None:
        subprocess.run([str(SCRIPT), *args], env=self.env, check=True, timeout=180)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.run("start")
        yield cluster
    finally:
        cluster.run("stop")
        shutil.rmtree(cluster.dir, ignore_errors=True)


async def replication(bootstrap: str, topic: str) -> tuple[set[int], str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    replicas = {len(p["replicas"]) for p in described[0]["partitions"]}
    resource = configs[0].to_object()["resources"][0]
    entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return replicas, entries["min.insync.replicas"]


@pytest.mark.timeout(540)
async def test_a_broker_killed_during_5000_events_loses_nothing(cluster, make_system):
    started = time.monotonic()
    system = await make_system(
        "cluster",
        bootstrap=cluster.bootstrap,
        env={"EXCHANGE_TOPIC_REPLICATION_FACTOR": "3", "EXCHANGE_TOPIC_MIN_INSYNC_REPLICAS": "2"},
    )
    assert await replication(cluster.bootstrap, f"{system.prefix}exchange.events.v1") == ({3}, "2")
    killed_at = restarted_at = 0.0
    partners = HqPartners(system, "cluster")
    async with (
        system.client("events", "province", "440000", "events:write") as client,
        system.client("partners", *HQ) as hq,
    ):
        for batch in range(EVENTS // BATCH):
            await partners.step(hq)
            events = [
                event_body(f"c-{batch}-{i}", ("440000", "310000", "510000")[i % 3], participants=40 + i % 90)
                for i in range(BATCH)
            ]
            answer = await system.post_batch(client, events)
            assert answer.status_code == 200, answer.text
            assert {item["status"] for item in answer.json()["items"]} == {"created"}
            if batch == 4:
                await asyncio.to_thread(cluster.run, "kill", "2")
                killed_at = time.monotonic()
            if batch == 12:
                await asyncio.to_thread(cluster.run, "start-node", "2")
                restarted_at = time.monotonic()
    assert len([w for w in system.acknowledged if w.kind == "event"]) == EVENTS
    report = await system.converged(240)
    assert report.ok, str(report)
    assert report.regions_checked >= 70
    await partners.assert_in_figures()
    assert restarted_at > killed_at > started
    assert time.monotonic() - started < 420, "over the time budget"
