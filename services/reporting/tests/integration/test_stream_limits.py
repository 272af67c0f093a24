"""The stream under load: a cap on open subscriptions per process (503 beyond it), and a reconnect
storm with stale `Last-Event-ID`s served by one snapshot query, not one per connection."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import reporting.stream.broadcaster as broadcaster_module
from sse import Message, read_events
from support import EVENTS, event_data, event_message, prepare, running_service

CAP = 20


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        make_database,
        "rep_stream_limits",
        kafka_bootstrap,
        f"{topic_prefix}streamlimits.",
        jwt_secret,
        stream_heartbeat_seconds=0.5,
        sse_max_subscribers=CAP,
    )
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        events = [event_message(event_data(host_province="440000", participants=30)) for _ in range(3)]
        await svc.producer.send(EVENTS, *events)
        await svc.settle(3)
        yield svc


async def test_subscriptions_beyond_the_cap_get_503_with_retry_after(service):
    opened: list[httpx.Response] = []
    async with service.client(timeout=10) as client:
        try:
            for _ in range(CAP):
                request = client.build_request("GET", "/v1/metrics/stream")
                response = await client.send(request, stream=True)
                assert response.status_code == 200
                opened.append(response)
            assert service.app.state.broadcaster.subscribers == CAP
            refused = await client.send(client.build_request("GET", "/v1/metrics/stream"), stream=True)
            opened.append(refused)
            assert refused.status_code == 503
            await refused.aread()
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) > 0
            assert refused.json()["status"] == 503 and str(CAP) in refused.json()["detail"]
            await opened.pop(0).aclose()

            async def freed() -> bool:
                return service.app.state.broadcaster.subscribers < CAP

            deadline = time.monotonic() + 10
            while not await freed():
                assert time.monotonic() < deadline, "a closed stream did not free its place"
                await asyncio.sleep(0.05)
            again = await client.send(client.build_request("GET", "/v1/metrics/stream"), stream=True)
            assert again.status_code == 200
            opened.append(again)
        finally:
            for response in opened:
                await response.aclose()


async def _snapshot_of(service, client: httpx.AsyncClient, region: str) -> dict:
    """Connect with a stale Last-Event-ID and read the snapshot until `region`'s message."""
    headers = {**service.headers, "Last-Event-ID": "1"}
    async with client.stream("GET", "/v1/metrics/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for message in read_events(response):
            if isinstance(message, Message) and message.event == "metrics" and message.json()["region"] == region:
                return dict(message.json())
    raise AssertionError("the stream ended before the snapshot reached the region")


async def test_a_reconnect_storm_with_stale_ids_runs_one_snapshot_query(service, monkeypatch):
    snapshot_reads = 0
    read = broadcaster_module.region_objects

    async def counted(session, regions, year, **kwargs):
        nonlocal snapshot_reads
        if regions is None:  # every region: the snapshot
            snapshot_reads += 1
        return await read(session, regions, year, **kwargs)

    monkeypatch.setattr(broadcaster_module, "region_objects", counted)
    expected = await service.region("cn:440000")
    async with service.client(timeout=30) as client:
        snapshots = await asyncio.wait_for(
            asyncio.gather(*(_snapshot_of(service, client, "cn:440000") for _ in range(CAP))), 60
        )
    assert snapshot_reads == 1
    assert len(snapshots) == CAP
    for snapshot in snapshots:
        assert snapshot["events"] == expected["events"]
        assert snapshot["events"]["count"] >= 3 and snapshot["events"]["participants"] >= 90


async def test_a_shared_snapshot_is_not_reused_once_figures_changed(service):
    async with service.client(timeout=30) as client:
        before = await _snapshot_of(service, client, "cn:440000")
        broadcaster = service.app.state.broadcaster
        published = broadcaster.last_id
        await service.producer.send(EVENTS, event_message(event_data(host_province="440000", participants=30)))

        async def announced() -> bool:
            return broadcaster.last_id > published

        deadline = time.monotonic() + 20
        while not await announced():
            assert time.monotonic() < deadline, "the change was not published"
            await asyncio.sleep(0.05)
        after = await _snapshot_of(service, client, "cn:440000")
    assert after["events"]["count"] == before["events"]["count"] + 1
    assert after["events"] == (await service.region("cn:440000"))["events"]
