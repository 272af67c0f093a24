"""Single creates written in groups (application/group_commit.py) on real PostgreSQL and Kafka: each
request's message carries its own trace context, two processes racing for one key make one event,
and the per-row headers survive the statement's plain-array variant."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from common.ids import uuid7_strings
from common.outbox import OutboxMessage
from events.adapters.pg import PgPool, connector
from events.adapters.postgres import PostgresEventStore, insert_new
from events.application.ports import RECORDED_CHANGES, Actor
from events.application.use_cases import EventsService
from events.domain.event import Event
from events.domain.model import EventCreate
from sqlalchemy import text

from ..conftest import body

PROVINCE = ("province", "440000", "events:write")


async def test_concurrent_posts_publish_each_with_its_own_trace_context(service, token):
    traces = [uuid.uuid4().hex for _ in range(24)]
    responses = await asyncio.gather(
        *[
            service.client.post(
                "/v1/events",
                json=body(),
                headers={"Authorization": token(*PROVINCE), "traceparent": f"00-{trace}-{'1' * 16}-01"},
            )
            for trace in traces
        ]
    )
    assert [r.status_code for r in responses] == [201] * len(traces), [r.text for r in responses]
    # This module's topic holds these messages first (the tests below publish none).
    by_key = {record.key.decode(): record for record in await service.messages(expected=len(traces))}
    for trace, response in zip(traces, responses, strict=True):
        record = by_key[response.json()["id"]]
        headers = dict(record.headers)
        assert headers["traceparent"].decode().split("-")[1] == trace
        assert headers["ce_type"] == b"exchange.event.recorded"
        assert json.loads(record.value)["data"] == response.json()


async def test_two_processes_posting_one_key_at_once_make_one_event(service):
    """Two services with pools of their own stand for two API workers: their groups race in PostgreSQL."""
    settings = service.settings
    other = EventsService(
        PostgresEventStore(
            service.app.state.runtime.sessions, PgPool(connector(settings.database_url), 4), topic=service.topic
        )
    )
    ours: EventsService = service.app.state.events
    actor = Actor("province", "440000", False, "province:440000")
    try:
        for _round in range(10):
            draft = EventCreate.model_validate(body())
            first, second = await asyncio.gather(
                ours.record_event(actor=actor, draft=draft), other.record_event(actor=actor, draft=draft)
            )
            assert sorted([first.created, second.created]) == [False, True]
            assert first.state["id"] == second.state["id"]
            async with service.app.state.runtime.sessions() as session:
                stored = await session.scalar(
                    text("SELECT count(*) FROM events WHERE external_ref = :ref"), {"ref": draft.external_ref}
                )
            assert stored == 1
    finally:
        await other.drain()
        await other.store.close()


async def test_per_row_headers_with_the_plain_array_statement(service):
    now = datetime.now(UTC)
    content = EventCreate.model_validate(body()).canonical_content()
    new = [
        Event.record(
            event_id=event_id,
            key=("province", "440000", f"hdr-{uuid.uuid4()}"),
            content={**content, "title": title},
            stamp=now.isoformat(),
        )
        for event_id, title in zip(uuid7_strings(2), ("a\x1fb", "plain"), strict=True)  # U+001F: not packable
    ]
    states = [event.state for event in new]
    headers = ['{"n": "1"}', '{"n": "2"}']
    messages = [OutboxMessage(str(uuid.uuid4()), s["id"], "{}", h) for s, h in zip(states, headers, strict=True)]
    actors = [Actor("province", "440000", False, "a\x1fclient"), Actor("hq", "HQ", True, "hq:HQ")]
    async with service.app.state.events.store.pool.connection() as connection:
        transaction = connection.transaction()  # rolled back: the relay never sees these rows
        await transaction.start()
        try:
            inserted = await insert_new(connection, new, messages, actors, topic="t", now=now)
            rows = await connection.fetch(
                "SELECT key, headers FROM outbox WHERE key = ANY($1::text[]) ORDER BY id", [s["id"] for s in states]
            )
            audited = await connection.fetch(
                "SELECT entity_id, actor_sub, actor_kind, changes FROM audit_log WHERE entity_id = ANY($1::text[]) "
                "ORDER BY id",
                [s["id"] for s in states],
            )
        finally:
            await transaction.rollback()
    assert inserted == {s["id"] for s in states}
    assert [(row["key"], row["headers"]) for row in rows] == [
        (s["id"], h) for s, h in zip(states, headers, strict=True)
    ]
    assert [(r["entity_id"], r["actor_sub"], r["actor_kind"], json.loads(r["changes"])) for r in audited] == [
        (s["id"], a.sub, a.org_kind, RECORDED_CHANGES) for s, a in zip(states, actors, strict=True)
    ]


async def test_a_failed_lookup_of_posts_sent_again_fails_only_those(service, monkeypatch):
    ours: EventsService = service.app.state.events
    actor = Actor("province", "440000", False, "province:440000")
    before = EventCreate.model_validate(body())
    assert (await ours.record_event(actor=actor, draft=before)).created

    async def lookup_fails(*_args: object) -> None:
        raise ConnectionResetError("lost after the insert committed")

    monkeypatch.setattr(ours.store, "find_by_keys", lookup_fails)
    fresh = EventCreate.model_validate(body())
    again, new = await asyncio.gather(
        ours.record_event(actor=actor, draft=before),
        ours.record_event(actor=actor, draft=fresh),
        return_exceptions=True,
    )
    assert isinstance(again, ConnectionResetError)
    assert not isinstance(new, BaseException) and new.created  # committed, and answered so
