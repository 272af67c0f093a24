"""Fixtures for the partners service: a migrated real PostgreSQL database, the app with its lifespan
(relay and scheduler) on the real broker, and helpers to build bodies and read the topic."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from common.testing.service import AppLiveServer, RunningService, ServiceUnderTest
from partners.config import PartnersSettings
from partners.contracts import TOPIC
from partners.entrypoints.app import create_app

SERVICE_DIR = Path(__file__).resolve().parents[1]
_counter = itertools.count()
COUNTRIES = ["DE", "FR", "GB", "JP", "KR", "RU", "US", "BR", "ZA", "EG", "TH", "VN", "KZ", "SE", "IT", "ES"]


def organization(**overrides: Any) -> dict[str, Any]:
    """A valid organization body with a fresh name each call unless given."""
    n = next(_counter)
    base: dict[str, Any] = {
        "name": f"Academy of Sciences number {n}",
        "name_zh": f"科学院{n}号",
        "country": COUNTRIES[n % len(COUNTRIES)],
        "kind": "academy",
        "website": "https://example.org",
    }
    base.update(overrides)
    return base


def agreement(partner_ids: list[str], **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "external_ref": f"AGR-{next(_counter)}",
        "title": "Memorandum of understanding on young scientists' exchange",
        "kind": "mou",
        "partner_org_ids": partner_ids,
        "signed_on": "2025-05-10",
        "expires_on": "2035-05-09",
        "fields": ["young_scientists"],
        "flagship": False,
    }
    base.update(overrides)
    return base


class Service(RunningService[PartnersSettings]):
    """A running app, its settings and an HTTP client bound to it."""

    async def messages_for(self, subject: str, expected: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The message values keyed by `subject` (reads the topic until `expected` of them arrived)."""
        return [json.loads(r.value) for r in await self.records_for(subject, expected, timeout)]

    async def create_organization(self, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/partners/organizations", json=organization(**overrides), headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())


def _settings_defaults(tmp_path_factory: pytest.TempPathFactory, name: str) -> dict[str, Any]:
    """Each module's documents in a directory of its own; the scheduler runs only when a test calls it."""
    return {"documents_dir": str(tmp_path_factory.mktemp(f"documents-{name}")), "scheduler_interval_seconds": 3600}


PARTNERS = ServiceUnderTest(
    "partners", PartnersSettings, create_app, TOPIC, SERVICE_DIR, Service, settings_defaults=_settings_defaults
)
settings_factory, service, live = PARTNERS.fixtures()
migrated_database = PARTNERS.migrated_database
running_service = PARTNERS.running_service
PartnersLiveServer = AppLiveServer[PartnersSettings]


@pytest.fixture(scope="session")
def headers(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """headers("province", "440000", "partners:write") → {"Authorization": ...}."""

    def make(kind: str = "hq", code: str = "HQ", *scopes: str) -> dict[str, str]:
        return {"Authorization": token(kind, code, *(scopes or ("partners:write",)))}

    return make
