"""The inbox: ids of messages already applied, written in the consumer's transaction, so a
redelivered message (the relay publishes at least once) has no effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

INBOX_TABLE = "inbox"


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        INBOX_TABLE,
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


async def claim_new(session: AsyncSession, inbox: Table, topic_by_id: dict[str, str]) -> set[str]:
    """Record the ids not seen before and return them; ids already in the inbox are duplicates."""
    ids: Sequence[str] = list(topic_by_id)
    if not ids:
        return set()
    seen: set[str] = set()
    for start in range(0, len(ids), 5000):  # stay below the bind-parameter limits
        chunk = ids[start : start + 5000]
        seen.update((await session.scalars(select(inbox.c.event_id).where(inbox.c.event_id.in_(chunk)))).all())
    new = [i for i in ids if i not in seen]
    if new:
        now = datetime.now(UTC)
        await session.execute(
            insert(inbox), [{"event_id": i, "topic": topic_by_id[i], "processed_at": now} for i in new]
        )
    return set(new)
