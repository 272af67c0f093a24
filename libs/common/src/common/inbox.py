"""The inbox: ids of messages already applied, written in the consumer's transaction, so a
redelivered message (the relay publishes at least once) has no effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import asyncpg_connection

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
    if not topic_by_id:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        return await _claim_new_postgres(session, inbox, topic_by_id)
    ids: Sequence[str] = list(topic_by_id)
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


async def _claim_new_postgres(session: AsyncSession, inbox: Table, topic_by_id: dict[str, str]) -> set[str]:
    # Two round trips whatever the batch size: the ids already there, then a plain insert of the rest
    # (array parameters), which costs PostgreSQL ~30 % less than `ON CONFLICT DO NOTHING RETURNING`
    # (bench/reporting/README.md). The insert runs in a savepoint: should another consumer have claimed
    # one of the ids in between (two owners of a partition for a moment during a rebalance), it is
    # rolled back and the claim is redone with the conflict-tolerant statement.
    driver = await asyncpg_connection(session)
    ids = list(topic_by_id)
    seen = {
        r[0] for r in await driver.fetch(f"SELECT event_id FROM {inbox.name} WHERE event_id = ANY($1::text[])", ids)
    }
    new = [i for i in ids if i not in seen] if seen else ids
    if not new:
        return set()
    topics = [topic_by_id[i] for i in new]
    insert_new = (
        f"INSERT INTO {inbox.name} (event_id, topic, processed_at) "
        "SELECT e, t, now() FROM unnest($1::text[], $2::text[]) AS u(e, t)"
    )
    try:
        async with driver.transaction():  # a savepoint inside the session's transaction
            await driver.execute(insert_new, new, topics)
    except UniqueViolationError:
        rows = await driver.fetch(f"{insert_new} ON CONFLICT (event_id) DO NOTHING RETURNING event_id", new, topics)
        return {r[0] for r in rows}
    return set(new)


async def prune(session: AsyncSession, inbox: Table, older_than: datetime, *, limit: int = 10_000) -> int:
    """Forget ids applied before `older_than`, at most `limit` per call (short transactions); returns how
    many. A message redelivered after its id is forgotten is applied again, so the retention must exceed
    how long a message can still come back (the topics' retention); consumers whose effects are also
    guarded otherwise (reporting's per-aggregate versions) can keep less."""
    oldest = select(inbox.c.event_id).where(inbox.c.processed_at < older_than).limit(limit)
    result = await session.execute(delete(inbox).where(inbox.c.event_id.in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
