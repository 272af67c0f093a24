"""Fixtures for the talent service: a migrated real PostgreSQL database, the app with its lifespan
(relay included) on the real broker, record builders and a reader of the topic."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from common.testing.service import AppLiveServer, RunningService, ServiceUnderTest
from talent.config import TalentSettings
from talent.contracts import TOPIC
from talent.entrypoints.app import create_app

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def record(n: int | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid sync record; a fresh external_id unless `n` or one is given."""
    n = next(_counter) if n is None else n
    base: dict[str, Any] = {
        "external_id": f"P-{n}",
        "name": f"测试人员{n}",
        "name_en": f"Test Person {n}",
        "gender": "F" if n % 2 else "M",
        "birth_year": 1960 + n % 40,
        "groups": ["engineer", "young_scientist"] if n % 3 else ["woman_scientist"],
        "country": "CN",
        "province": "110000",
        "affiliation": f"Institute {n}",
        "email": f"person{n}@example.org",
        "orcid": "0000-0002-1825-0097",
        "fields": ["materials"],
        "reserve": n % 5 == 0,
        "posts": [
            {"organization": "WFEO", "organization_country": "FR", "role": "vice_president", "start_date": "2022-01-01"}
        ]
        if n % 4 == 0
        else [],
    }
    base.update(overrides)
    return base


class Service(RunningService[TalentSettings]):
    async def messages(self, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        records = await self.records(expected, timeout)
        return [
            {"key": r.key.decode(), "raw": r.value, "value": json.loads(r.value), "headers": dict(r.headers)}
            for r in records
        ]


TALENT = ServiceUnderTest("talent", TalentSettings, create_app, TOPIC, SERVICE_DIR, Service, client_timeout=120)
settings_factory, service, live = TALENT.fixtures()
migrated_database = TALENT.migrated_database
running_service = TALENT.running_service
TalentLiveServer = AppLiveServer[TalentSettings]
