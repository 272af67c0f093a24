"""Which `ProjectionWriter` a session gets: the composition root and the rebuild pass this factory in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.postgresql import PostgresProjectionWriter
from reporting.adapters.sqlite import SqlProjectionWriter
from reporting.projections.ports import ProjectionWriter


def projection_writer(session: AsyncSession) -> ProjectionWriter:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresProjectionWriter(session)
    return SqlProjectionWriter(session)
