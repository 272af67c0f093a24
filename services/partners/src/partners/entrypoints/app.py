"""The partners service's app factory: the composition root."""

from __future__ import annotations

from common.service import service_app
from fastapi import FastAPI

from partners.adapters.tables import outbox
from partners.config import PartnersSettings
from partners.contracts import TOPIC

DESCRIPTION = "Partner organizations, agreements and memberships (the API lands with its issue)."


def create_app(settings: PartnersSettings | None = None) -> FastAPI:
    return service_app(settings or PartnersSettings(), description=DESCRIPTION, outbox=outbox, topics=[TOPIC])
