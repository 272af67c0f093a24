"""The talent service's app factory: the composition root."""

from __future__ import annotations

from common.service import service_app
from fastapi import FastAPI

from talent.adapters.tables import outbox
from talent.config import TalentSettings
from talent.contracts import TOPIC

DESCRIPTION = "Talent pools and posts in international organizations (the API lands with its issue)."


def create_app(settings: TalentSettings | None = None) -> FastAPI:
    return service_app(settings or TalentSettings(), description=DESCRIPTION, outbox=outbox, topics=[TOPIC])
