"""A change whose published message would not stay under the bound (the contract: 256 KiB) is refused
with 422 naming the field, and nothing is written. The bounded fields cannot make a partners message
reach 256 KiB, so the service runs here with a bound of 1 KiB (`PARTNERS_OUTBOX_MAX_MESSAGE_BYTES`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from partners.adapters.tables import organizations
from sqlalchemy import func, select

from ..conftest import Service, migrated_database, organization, running_service

LIMIT = 1024
LONG_NAME = "国" * 300  # the longest name, three bytes a character


@pytest.fixture(scope="module")
async def bounded(make_database, settings_factory, kafka_bootstrap) -> AsyncIterator[Service]:
    url = await migrated_database(make_database, "pa_message_size")
    settings = settings_factory(url, "pa_message_size", outbox_max_message_bytes=LIMIT)
    async for running in running_service(settings, kafka_bootstrap):
        yield running


async def _organizations(service: Service) -> int:
    async with service.app.state.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(organizations)) or 0)


def _assert_names_the_field(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [["body", field]]
    assert field in problem["detail"] and str(LIMIT) in problem["detail"]


async def test_a_create_or_change_whose_message_is_too_large_is_422_and_writes_nothing(bounded: Service, headers):
    hq = headers()
    refused = await bounded.client.post("/v1/partners/organizations", json=organization(name=LONG_NAME), headers=hq)
    _assert_names_the_field(refused, "name")
    assert await _organizations(bounded) == 0
    created = await bounded.create_organization(hq)
    url = f"/v1/partners/organizations/{created['id']}"
    changed = await bounded.client.patch(url, json={"name": LONG_NAME}, headers=hq | {"If-Match": '"1"'})
    _assert_names_the_field(changed, "name")
    assert (await bounded.client.get(url, headers=hq)).json() == created  # unchanged, still version 1
