"""A reporting consumer that kills its own process (SIGKILL, no cleanup) at a chosen point:
`after-db-commit` (the batch is committed, its offsets are not) or `before-db-commit` (inside the
batch's transaction). Configured by the REPORTING_* environment like the service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from common.db import create_engine, session_factory
from common.kafka.consumer import ConsumerRunner, Delivery
from reporting.adapters.tables import inbox
from reporting.adapters.writers import projection_writer
from reporting.config import ReportingSettings
from reporting.projections.handler import ProjectionHandler


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingHandler(ProjectionHandler):
    async def apply(self, session, deliveries: Sequence[Delivery]) -> None:  # type: ignore[no-untyped-def]
        await super().apply(session, deliveries)
        await session.flush()
        die()  # the transaction is open: PostgreSQL rolls it back when the connection drops


async def main(point: str) -> None:
    settings = ReportingSettings()
    engine = create_engine(settings.database_url)

    async def after_db_commit() -> None:
        die()

    runner = ConsumerRunner(
        service="reporting-crash",
        topics=settings.source_topics(),
        group_id=settings.consumer_group,
        sessions=session_factory(engine),
        inbox=inbox,
        handler=DyingHandler(projection_writer)
        if point == "before-db-commit"
        else ProjectionHandler(projection_writer),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        max_batch=settings.max_batch,
        after_db_commit=after_db_commit if point == "after-db-commit" else None,
    )
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
