"""The portable write path on SQLite (the local default): migrations, apply, reads, rebuild's tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

from common.db import create_engine, session_factory
from common.envelope import CloudEvent
from common.migrations import upgrade_async
from reporting.adapters.writers import projection_writer
from reporting.projections.apply import apply_changes
from reporting.projections.changes import decode_change
from reporting.read.queries import body_rows, region_objects
from support import SERVICE_DIR, agreement_message, event_data, event_message, organization_message


async def test_projections_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/reporting.db"
    await upgrade_async(url, SERVICE_DIR)
    engine = create_engine(url)
    sessions = session_factory(engine)
    v1 = event_data(host_province="440000", countries=["DE"], start_date="2025-02-01", participants=30)
    v2 = {**v1, "version": 2, "host_province": "320000", "participants": 40}
    messages: list[CloudEvent] = [
        event_message(v1),
        event_message(v2),
        event_message(v1),  # the older version again: ignored
        organization_message("org-1", "FR"),
        agreement_message("agr-1", ["org-1"], signed_on="2025-01-10", expires_on="2099-01-01"),
    ]
    try:
        for message in messages:  # one batch per message, as a slow trickle would arrive
            async with sessions() as session, session.begin():
                gen = await projection_writer(session).live_generation()
                change = decode_change(message)
                assert change is not None
                await apply_changes(projection_writer(session), gen, [change])
        async with sessions() as session:
            jiangsu, guangdong, europe = await region_objects(
                session, ["cn:320000", "cn:440000", "m49:150"], 2025, today=date(2026, 1, 1)
            )
            bodies = await body_rows(session, 2025)
        assert jiangsu["events"]["count"] == 1 and jiangsu["events"]["participants"] == 40
        assert guangdong["events"]["count"] == 0
        assert europe["events"]["countries"] == 1
        assert europe["partners"]["agreements_signed"] == 1 and europe["partners"]["agreements_active"] == 1
        assert europe["partners"]["countries"] == 1
        assert any(b["code"] == "440000" and b["last_change"] for b in bodies)
        assert datetime.fromisoformat(jiangsu["as_of"]).tzinfo == UTC
    finally:
        await engine.dispose()
