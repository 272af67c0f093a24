"""Which failures `reporting rebuild` skips (poison) and which fail it (transient): the live consumer's
classification (common.kafka.failures), so a rebuild skips exactly what the live consumer dead-letters.
A message that cannot be decoded is poison; so is one whose apply fails on its own, twice, with an error
`classify` calls poison while the database still answers. Anything else fails the rebuild, leaving the
live figures."""

from __future__ import annotations

from common.kafka.failures import classify
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def database_answers(sessions: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def apply_failure_is_poison(exc: Exception, sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a message whose apply failed ON ITS OWN (alone in its transaction, twice) is poison."""
    return classify(exc) == "poison" and await database_answers(sessions)
