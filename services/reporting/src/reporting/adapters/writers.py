"""Which adapters a session gets, from the database it reaches: the `ProjectionWriter` (the composition root
and the rebuild pass `projection_writer` in as the projections' factory) and the `GenerationStore`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.postgresql import PostgresGenerationStore, PostgresProjectionWriter
from reporting.adapters.sqlite import SqlGenerationStore, SqlProjectionWriter
from reporting.projections.ports import GenerationStore, ProjectionWriter


def _on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def projection_writer(session: AsyncSession) -> ProjectionWriter:
    if _on_postgresql(session):
        return PostgresProjectionWriter(session)
    return SqlProjectionWriter(session)


def generation_store(session: AsyncSession) -> GenerationStore:
    if _on_postgresql(session):
        return PostgresGenerationStore(session)
    return SqlGenerationStore(session)
