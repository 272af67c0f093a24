"""Which failures `reporting rebuild` skips (poison) and which fail it (transient), as the live consumer
(common.kafka.consumer) classifies them: a message that cannot be decoded or validated is poison, and
so is one whose apply fails on its own while the database answers; a lost connection, a timeout or a
failure the database reports as passing (serialization, deadlock, shutdown, resources) is transient.
The live consumer dead-letters poison and retries the rest; a rebuild skips and names poison, and
fails on the rest, leaving the live figures."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# SQLSTATE classes of failures that pass: 08 connection, 40 transaction rollback (serialization,
# deadlock), 53 insufficient resources, 57 operator intervention (shutdown, cancel), 58 system error.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")


def decode_failure_reason(exc: Exception) -> str:
    """The live consumer's dead-letter reason for a message that cannot be decoded (always poison)."""
    return "invalid-envelope" if isinstance(exc, ValidationError) else "invalid-data"


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing about the message: retrying (later) may succeed."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and state[:2] in TRANSIENT_SQLSTATE_CLASSES
    return False


async def database_answers(sessions: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def apply_failure_is_poison(exc: Exception, sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a message whose apply failed ON ITS OWN (alone in its transaction, twice) is poison: the
    failure is not transient and the database still answers."""
    return not is_transient(exc) and await database_answers(sessions)
