"""Builders of CloudEvents as the partners, events and talent services publish them (per the contract),
a producer, and a running reporting service (real uvicorn, real Kafka, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from common.envelope import CloudEvent
from common.kafka import ensure_topics
from common.migrations import upgrade_async
from common.testing.live import free_port
from common.testing.plugin import wait_until
from reporting.config import ReportingSettings
from reporting.entrypoints.app import create_app

SERVICE_DIR = Path(__file__).resolve().parents[1]
EVENTS, PARTNERS, TALENT = "exchange.events.v1", "exchange.partners.v1", "exchange.talent.v1"


def envelope(source: str, type_: str, data: dict[str, Any], *, event_id: str | None = None) -> CloudEvent:
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=type_,
        subject=str(data["id"]),
        time=datetime.now(UTC),
        data=data,
    )


def event_data(
    *,
    id: str | None = None,
    version: int = 1,
    organizer: tuple[str, str] = ("province", "440000"),
    type: str = "conference",
    start_date: str = "2025-05-10",
    host_country: str = "CN",
    host_province: str | None = "440000",
    participants: int = 100,
    foreign_participants: int = 20,
    papers: int = 5,
    countries: Iterable[str] = ("DE",),
    flagship: bool = False,
    status: str = "active",
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": id or str(uuid.uuid4()),
        "organizer": {"kind": organizer[0], "code": organizer[1]},
        "external_ref": f"ref-{uuid.uuid4().hex[:8]}",
        "title": "Test event",
        "type": type,
        "start_date": start_date,
        "end_date": start_date,
        "host_country": host_country,
        "host_province": host_province,
        "city": "Guangzhou",
        "participants": participants,
        "foreign_participants": foreign_participants,
        "papers": papers,
        "countries": list(countries),
        "partner_org_ids": [],
        "fields": [],
        "target_groups": [],
        "flagship": flagship,
        "status": status,
        "version": version,
        "created_at": now,
        "updated_at": now,
    }


def event_message(data: dict[str, Any], type_: str | None = None, **kwargs: Any) -> CloudEvent:
    if type_ is None:
        type_ = (
            "exchange.event.cancelled"
            if data["status"] == "cancelled"
            else ("exchange.event.recorded" if data["version"] == 1 else "exchange.event.updated")
        )
    return envelope("/events", type_, data, **kwargs)


def organization_message(org_id: str, country: str | None, version: int = 1, kind: str = "academy") -> CloudEvent:
    data = {"id": org_id, "name": f"Org {org_id[:6]}", "country": country, "kind": kind, "version": version}
    type_ = "exchange.organization.registered" if version == 1 else "exchange.organization.updated"
    return envelope("/partners", type_, data)


def agreement_message(
    agreement_id: str,
    partner_org_ids: list[str],
    *,
    signed_on: str = "2025-03-01",
    expires_on: str | None = None,
    status: str = "active",
    version: int = 1,
    signer: tuple[str, str] = ("province", "110000"),
    flagship: bool = False,
    type_: str = "exchange.agreement.signed",
) -> CloudEvent:
    data = {
        "id": agreement_id,
        "title": "MoU",
        "kind": "mou",
        "partner_org_ids": partner_org_ids,
        "signed_on": signed_on,
        "expires_on": expires_on,
        "status": status,
        "flagship": flagship,
        "signed_by": {"kind": signer[0], "code": signer[1]},
        "version": version,
    }
    return envelope("/partners", type_, data)


def person_message(
    person_id: str,
    *,
    version: int = 1,
    society: str = "CMES",
    groups: Iterable[str] = ("young_scientist",),
    country: str = "CN",
    province: str | None = "310000",
    reserve: bool = False,
    posts: Iterable[dict[str, Any]] = (),
    removed: bool = False,
) -> CloudEvent:
    if removed:
        return envelope("/talent", "exchange.person.removed", {"id": person_id, "society": society, "version": version})
    data = {
        "id": person_id,
        "society": society,
        "groups": list(groups),
        "country": country,
        "province": province,
        "reserve": reserve,
        "posts": list(posts),
        "deleted": False,
        "version": version,
    }
    return envelope("/talent", "exchange.person.upserted", data)


class Producer:
    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=2
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer:
            await self._producer.stop()

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def send(self, topic: str, *messages: CloudEvent | bytes, key: str | None = None) -> None:
        assert self._producer is not None
        futures = []
        for message in messages:
            if isinstance(message, CloudEvent):
                value, k = message.to_bytes(), message.subject
            else:
                value, k = message, key or "raw"
            futures.append(await self._producer.send(self.prefix + topic, value, key=k.encode()))
        for future in futures:
            await future


@dataclass
class RunningService:
    settings: ReportingSettings
    base_url: str
    app: Any
    server: uvicorn.Server
    producer: Producer
    headers: dict[str, str]

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=kwargs.pop("headers", self.headers), **kwargs)

    async def region(self, code: str, year: int | None = None) -> dict[str, Any]:
        async with self.client() as client:
            params = {"year": year} if year else {}
            response = await client.get(f"/v1/metrics/regions/{code}", params=params)
            response.raise_for_status()
            return dict(response.json())

    @property
    def handler(self) -> Any:
        return self.app.state.handler

    def seen(self) -> int:
        """Messages the consumer has handled: applied, skipped as duplicates or dead-lettered."""
        state = self.app.state.runtime.consumers[0].state
        return int(state.processed + state.duplicates + state.dead_lettered)

    async def settle(self, seen_at_least: int, timeout: float = 20.0) -> None:
        async def done() -> bool:
            return self.seen() >= seen_at_least

        await wait_until(done, timeout)


async def prepare(
    make_database: Any, name: str, bootstrap: str, prefix: str, secret: str, **overrides: Any
) -> ReportingSettings:
    url = await make_database(name)
    await upgrade_async(url, SERVICE_DIR)
    settings = ReportingSettings(
        database_url=url,
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        topic_partitions=3,
        jwt_secret=secret,
        environment="test",
        consumer_group=f"reporting-{uuid.uuid4().hex[:8]}",
        **overrides,
    )
    topics = settings.source_topics()
    await ensure_topics(bootstrap, [*topics, *(f"{t}.dlq" for t in topics)], partitions=3)
    return settings


@contextlib.asynccontextmanager
async def running_service(settings: ReportingSettings, auth: str) -> AsyncIterator[RunningService]:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    producer = Producer(settings.kafka_bootstrap_servers, settings.topic_prefix)
    await producer.start()
    try:
        await wait_until(_started(server), 20)

        async def assigned() -> bool:
            consumers = app.state.runtime.consumers
            if not consumers:
                return True
            consumer = consumers[0]._consumer
            return consumer is not None and bool(consumer.assignment())

        await wait_until(assigned, 30)
        yield RunningService(settings, f"http://127.0.0.1:{port}", app, server, producer, {"Authorization": auth})
    finally:
        await producer.stop()
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def _started(server: uvicorn.Server) -> Any:
    async def check() -> bool:
        return bool(server.started)

    return check
