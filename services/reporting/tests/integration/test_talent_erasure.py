"""An erased person (the talent service's `exchange.person.removed`, its whole erased public state) leaves
every figure live, and again after `reporting rebuild` replays the topics."""

from __future__ import annotations

import uuid

import pytest
from common.db import create_engine, session_factory
from reporting.rebuild.replay import rebuild
from support import TALENT, envelope, person_message, prepare, running_service


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(make_database, "rep_erase", kafka_bootstrap, f"{topic_prefix}erase.", jwt_secret)
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


async def test_an_erased_person_leaves_every_figure_also_after_a_rebuild(service):
    base = service.seen()
    person = str(uuid.uuid4())
    post = {"organization": "ISC", "organization_country": "FR", "role": "president", "start_date": "2022-01-01"}
    await service.producer.send(
        TALENT,
        person_message(person, society="ERASE", province="440000", reserve=True, posts=[{**post, "end_date": None}]),
    )
    await service.settle(base + 1)
    assert (await service.region("cn:440000"))["talent"]["persons"] == 1
    erased = {
        "id": person,
        "version": 2,
        "society": "ERASE",
        "groups": [],
        "country": None,
        "province": None,
        "reserve": False,
        "posts": [],
        "deleted": True,
    }
    await service.producer.send(TALENT, envelope("/talent", "exchange.person.removed", erased))
    await service.settle(base + 2)

    async def gone() -> None:
        for region in ("cn:440000", "all", "m49:155"):  # home, everyone, the post's (France)
            talent = (await service.region(region))["talent"]
            assert (talent["persons"], talent["reserve"], talent["posts"]) == (0, 0, 0), region

    await gone()
    engine = create_engine(service.settings.database_url)
    try:
        await rebuild(
            session_factory(engine),
            bootstrap_servers=service.settings.kafka_bootstrap_servers,
            topics=service.settings.source_topics(),
            max_records=500,
        )
    finally:
        await engine.dispose()
    await gone()
