"""A change whose published message would not stay under the bound (the contract: 256 KiB) is refused
with 422 naming the field, and nothing is written. The bounded fields cannot make an event's message
reach 256 KiB (the first test shows the largest one), so the service runs here with a bound of 4 KiB
(`EVENTS_OUTBOX_MAX_MESSAGE_BYTES`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from common.migrations import upgrade_async
from common.outbox import MAX_MESSAGE_BYTES
from events.domain.model import MAX_LIST, MAX_TITLE, EventCreate
from sqlalchemy import func, select, table
from sqlalchemy.ext.asyncio import create_async_engine

from ..conftest import SERVICE_DIR, Service, body, migrated_database, running_service

LIMIT = 4096
WRITER = ("province", "440000", "events:write")
WIDE = "\U0001f52c" * 100  # the longest tag, four bytes a character


def wide_tags(count: int) -> list[str]:
    """`count` different tags of the longest length (a list's duplicates are dropped)."""
    return [f"{n:03d}" + WIDE[3:] for n in range(count)]


def test_the_largest_event_the_fields_allow_stays_under_256_kib():
    draft = EventCreate.model_validate(
        body(
            external_ref=WIDE * 2,
            title="\U0001f52c" * MAX_TITLE,
            city="\U0001f52c" * 200,
            countries=["DE"] * MAX_LIST,
            partner_org_ids=["01890a5d-ac96-774b-bcce-b302099a8057"] * MAX_LIST,
            fields=wide_tags(100),
            target_groups=wide_tags(100),
        )
    )
    state = {"id": "01890a5d-ac96-774b-bcce-b302099a8057", "external_ref": draft.external_ref}
    state |= draft.canonical_content() | {"organizer": {"kind": "province", "code": "440000"}}
    size = len(orjson.dumps({"data": state, "envelope": "x" * 400}))
    assert 80_000 < size < MAX_MESSAGE_BYTES // 2  # the big fields are in, and far under the bound


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def bounded(
    request, make_database, settings_factory, kafka_bootstrap, tmp_path_factory
) -> AsyncIterator[Service]:
    if request.param == "postgresql":
        url = await migrated_database(make_database, "ev_message_size")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('size')}/events.db"
        await upgrade_async(url, SERVICE_DIR)
    settings = settings_factory(url, f"size_{request.param}", outbox_max_message_bytes=LIMIT)
    async for running in running_service(settings, kafka_bootstrap):
        yield running


async def _events_recorded(service: Service) -> int:
    engine = create_async_engine(service.settings.database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(table("events"))) or 0)
    finally:
        await engine.dispose()


def _assert_names_fields(response: Any, loc: list[str]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert "fields" in problem["detail"] and str(LIMIT) in problem["detail"]


async def test_a_create_whose_message_is_too_large_is_422_and_writes_nothing(bounded: Service, token):
    headers = {"Authorization": token(*WRITER)}
    before = await _events_recorded(bounded)
    refused = await bounded.client.post("/v1/events", json=body(fields=wide_tags(20)), headers=headers)
    _assert_names_fields(refused, ["body", "fields"])
    assert await _events_recorded(bounded) == before
    fine = await bounded.client.post("/v1/events", json=body(fields=wide_tags(2)), headers=headers)
    assert fine.status_code == 201, fine.text


async def test_a_batch_item_whose_message_is_too_large_is_rejected_alone(bounded: Service, token):
    headers = {"Authorization": token(*WRITER)}
    items = [body(), body(fields=wide_tags(20)), body()]
    answer = await bounded.client.post("/v1/events/batch", json={"events": items}, headers=headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["items"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"]
    assert [e["loc"] for e in results[1]["errors"]] == [["events", "1", "fields"]]


async def test_a_change_whose_message_would_be_too_large_is_422(bounded: Service, token):
    headers = {"Authorization": token(*WRITER)}
    created = (await bounded.client.post("/v1/events", json=body(), headers=headers)).json()
    refused = await bounded.client.patch(
        f"/v1/events/{created['id']}", json={"fields": wide_tags(20)}, headers={**headers, "If-Match": '"1"'}
    )
    _assert_names_fields(refused, ["body", "fields"])
    read = await bounded.client.get(f"/v1/events/{created['id']}", headers=headers)
    assert read.json() == created  # unchanged, still version 1
