"""The agreement scheduler expires each agreement and gives each notice exactly once while two replicas
race: on PostgreSQL (advisory lock, rows re-checked under it) and on one SQLite file (one scheduler per file)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

from common.auth import Principal
from common.db import create_engine, session_factory
from common.migrations import upgrade_async
from partners.adapters.documents import LocalDocumentStorage
from partners.adapters.store import SqlStore
from partners.application.use_cases import PartnersService
from sqlalchemy import text

from ..conftest import SERVICE_DIR, agreement, organization

SIGNED = date(2025, 1, 1)
HQ = Principal(sub="test", org_kind="hq", org_code="HQ", scopes=frozenset({"admin"}))
COUNT = 40


def _replica(url: str, tmp_path, today: date) -> tuple[PartnersService, SqlStore, object]:
    engine = create_engine(url)
    store = SqlStore(session_factory(engine), "unused-topic")
    return PartnersService(store, LocalDocumentStorage(tmp_path), today=lambda: today), store, engine


async def _race(url: str, tmp_path) -> dict[str, int]:
    first, store_a, engine_a = _replica(url, tmp_path, SIGNED)
    second, store_b, engine_b = _replica(url, tmp_path, SIGNED)
    try:
        org = await first.register_organization(HQ, organization(ror_id=None))
        ids = []
        for n in range(COUNT):
            expires = SIGNED + timedelta(days=200 + n)  # outside every window when signed
            body = agreement([org["id"]], signed_on=SIGNED.isoformat(), expires_on=expires.isoformat())
            body["signed_on"], body["expires_on"] = SIGNED, expires
            del body["partner_org_ids"]
            state, _ = await first.sign_agreement(HQ, body | {"partner_org_ids": [org["id"]]})
            ids.append(state["id"])
        # Day by day past every expiry, both replicas at once each day.
        day = SIGNED
        while day <= SIGNED + timedelta(days=200 + COUNT + 14):
            await asyncio.gather(first.run_scheduler(day), second.run_scheduler(day))
            day += timedelta(days=7)
        async with engine_a.connect() as connection:  # type: ignore[attr-defined]
            rows = (await connection.execute(text("SELECT payload FROM outbox"))).scalars().all()
        counts: dict[str, int] = {}
        for payload in rows:
            message = json.loads(payload)
            if message["subject"] in ids:
                key = message["type"] + (
                    f":{message['data']['notice_days']}" if "notice_days" in message["data"] else ""
                )
                counts[key] = counts.get(key, 0) + 1
        return counts
    finally:
        store_a.close()
        store_b.close()
        await engine_a.dispose()  # type: ignore[attr-defined]
        await engine_b.dispose()  # type: ignore[attr-defined]


EXPECTED = {
    "exchange.agreement.signed": COUNT,
    "exchange.agreement.expiring:180": COUNT,
    "exchange.agreement.expiring:90": COUNT,
    "exchange.agreement.expiring:30": COUNT,
    "exchange.agreement.expired": COUNT,
}


async def test_two_schedulers_racing_on_postgresql(make_database, tmp_path):
    url = await make_database("pa_scheduler_race")
    await upgrade_async(url, SERVICE_DIR)
    assert await _race(url, tmp_path) == EXPECTED


async def test_two_schedulers_on_one_sqlite_file(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/partners.db"
    await upgrade_async(url, SERVICE_DIR)
    assert await _race(url, tmp_path) == EXPECTED
