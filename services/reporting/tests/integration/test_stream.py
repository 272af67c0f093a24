"""The live stream: a message per changed region, coalesced bursts, heartbeats, Last-Event-ID resume,
and the dashboard's short-lived access token."""

from __future__ import annotations

import asyncio
import time

import pytest
from sse import Message, read_events
from support import EVENTS, event_data, event_message, prepare, running_service


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        make_database,
        "rep_stream",
        kafka_bootstrap,
        f"{topic_prefix}stream.",
        jwt_secret,
        stream_heartbeat_seconds=0.5,
        stream_coalesce_ms=150,
    )
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


async def collect(service, *, until, params=None, headers=None, timeout=20.0) -> list[Message]:
    """Read the stream until `until(messages)` holds; returns everything read (comments included)."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    async with service.client(timeout=None) as client:
        request_headers = {**service.headers, **(headers or {})}
        async with client.stream("GET", "/v1/metrics/stream", params=params or {}, headers=request_headers) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers.get_list("cache-control") == ["no-store"]  # once: the route's own and the app's
            iterator = read_events(resp).__aiter__()
            while not until(messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"stream condition not met; got {len(messages)} messages")
                messages.append(await asyncio.wait_for(iterator.__anext__(), remaining))
    return messages


def for_region(messages: list[Message], code: str) -> list[dict]:
    return [m.json() for m in messages if m.event == "metrics" and m.json()["region"] == code]


async def test_a_burst_of_a_thousand_events_sends_a_handful_of_messages(service):
    async def burst() -> None:
        await asyncio.sleep(0.5)  # connected first
        events = [
            event_message(event_data(host_province="650000", start_date="2026-01-01", countries=[]))
            for _ in range(1000)
        ]
        await service.producer.send(EVENTS, *events)

    task = asyncio.create_task(burst())
    messages = await collect(
        service,
        until=lambda ms: any(o["events"]["count"] == 1000 for o in for_region(ms, "cn:650000")),
        params={"year": 2026},
    )
    await task
    xinjiang = for_region(messages, "cn:650000")
    assert 1 <= len(xinjiang) <= 15, len(xinjiang)
    counts = [o["events"]["count"] for o in xinjiang]
    assert counts == sorted(counts)  # figures only grow through the burst
    ids = [int(m.id) for m in messages if m.id]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(o["year"] == 2026 for o in xinjiang)


async def test_heartbeats_keep_an_idle_stream_alive(service):
    messages = await collect(
        service, until=lambda ms: sum((m.comment or "").startswith("ping") for m in ms) >= 2, timeout=5
    )
    assert sum((m.comment or "").startswith("ping") for m in messages) >= 2


async def test_last_event_id_resumes_where_the_client_left(service):
    async def record() -> None:
        await asyncio.sleep(0.5)
        await service.producer.send(EVENTS, event_message(event_data(host_province="460000", start_date="2026-02-01")))

    task = asyncio.create_task(record())
    first = await collect(service, until=lambda ms: bool(for_region(ms, "cn:460000")), params={"year": 2026})
    await task
    last_id = [m.id for m in first if m.id][-1]
    # While disconnected, another event changes Hainan.
    base = service.seen()
    await service.producer.send(EVENTS, event_message(event_data(host_province="460000", start_date="2026-02-02")))
    await service.settle(base + 1)
    await asyncio.sleep(0.5)  # published to the ring buffer
    resumed = await collect(
        service,
        until=lambda ms: bool(for_region(ms, "cn:460000")),
        params={"year": 2026},
        headers={"Last-Event-ID": last_id},
    )
    replayed = [m for m in resumed if m.event == "metrics"]
    assert int(replayed[0].id) > int(last_id)
    assert for_region(resumed, "cn:460000")[0]["events"]["count"] == 2


async def test_an_unknown_last_event_id_gets_a_snapshot_of_every_region(service):
    async with service.client() as client:
        regions = len((await client.get("/v1/regions")).json()["items"])
    snapshot = await collect(
        service,
        until=lambda ms: len([m for m in ms if m.event == "metrics"]) >= regions,
        headers={"Last-Event-ID": "1"},
    )
    codes = {m.json()["region"] for m in snapshot if m.event == "metrics"}
    assert len(codes) == regions


async def test_dashboard_session_token_opens_the_stream(service, token):
    async with service.client() as client:
        session = (await client.post("/v1/dashboard/session")).json()
        assert session["expires_in"] > 0 and session["scope"] == "reporting:read"
    async with service.client(headers={}) as anonymous:
        denied = await anonymous.get("/v1/metrics/stream")
        assert denied.status_code == 401
        wrong = await anonymous.get(
            "/v1/metrics/stream", params={"access_token": token("province", "440000", "events:write")[7:]}
        )
        assert wrong.status_code == 403
    service_headers = service.headers
    service.headers = {}
    try:
        messages = await collect(
            service,
            until=lambda ms: any(m.comment == "connected" for m in ms),
            params={"access_token": session["access_token"]},
        )
    finally:
        service.headers = service_headers
    assert messages
