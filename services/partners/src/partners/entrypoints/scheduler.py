"""The agreement scheduler's loop: a pass at start-up and every `scheduler_interval_seconds` after."""

from __future__ import annotations

import asyncio
import logging

from partners.application.use_cases import PartnersService

log = logging.getLogger(__name__)


async def run_scheduler(service: PartnersService, interval: float) -> None:
    while True:
        try:
            result = await service.run_scheduler()
            if result.expired or result.notices:
                log.info("scheduler: %d agreements expired, %d renewal notices", result.expired, result.notices)
        except Exception:  # the database away, say: try again next time
            log.warning("scheduler pass failed; retrying in %.0f s", interval, exc_info=True)
        await asyncio.sleep(interval)
