"""`<svc> republish`: write every aggregate's current state to the outbox again, for the relay to publish.

After a service's database is restored from a backup, or when a consumer missed changes (its own
database restored behind its committed offsets), the topics no longer match what the services hold.
Republishing repairs that: each message carries an aggregate's whole state and `version`, so a consumer
that already has that version ignores it (the version gate) and one that missed it catches up.
The messages go through the outbox like any other change, so order per key and at-least-once hold;
the running service's relay (or the next one to start) publishes them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.db import create_engine, session_factory
from common.ids import uuid7_strings
from common.outbox import MessageBatch, OutboxMessage, stage
from common.runtime import run_async
from common.settings import ServiceSettings


class Published(NamedTuple):
    """What a stored row is announced as: the type of its last change, its aggregate id (the CloudEvent
    subject and Kafka key) and its whole public state, JSON-ready."""

    type: str
    subject: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class RepublishedAggregate:
    """One kind of aggregate a service publishes: its table, its topic and source, and what a stored row
    is announced as (its message is made by `common.outbox.outbox_message`, as every written one is)."""

    name: str
    table: Table
    topic: str  # unprefixed; the settings' topic prefix is added
    source: str
    published: Callable[[Mapping[str, Any]], Published]
    key_column: str = "id"


def republished_messages(aggregate: RepublishedAggregate, rows: Sequence[Mapping[str, Any]]) -> list[OutboxMessage]:
    """The messages of a batch of stored rows: one time, and one set of headers per type, for the batch."""
    batch = MessageBatch(aggregate.source)
    messages = []
    for row, message_id in zip(rows, uuid7_strings(len(rows)), strict=True):
        published = aggregate.published(row)
        messages.append(batch.message(published.type, published.subject, published.data, message_id=message_id))
    return messages


async def republish(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Table,
    aggregates: Sequence[RepublishedAggregate],
    *,
    settings: ServiceSettings,
    batch_size: int = 500,
) -> dict[str, int]:
    """Stage the current state of every row of every aggregate; returns the count per aggregate.

    One transaction per batch (in key order) keeps transactions short on a large table; a failure
    part-way leaves the batches already committed to be published, and running it again is harmless.
    """
    counts: dict[str, int] = {}
    for aggregate in aggregates:
        key = aggregate.table.c[aggregate.key_column]
        topic = settings.topic(aggregate.topic)
        counts[aggregate.name] = 0
        last: Any = None
        while True:
            query = select(aggregate.table).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            async with sessions() as session, session.begin():
                rows = (await session.execute(query)).mappings().all()
                if not rows:
                    break
                messages = republished_messages(aggregate, cast(Sequence[Mapping[str, Any]], rows))
                await stage(session, outbox, messages, topic)
            counts[aggregate.name] += len(rows)
            last = rows[-1][aggregate.key_column]
    return counts


def add_republish_command(sub: Any) -> None:
    """The `republish` subcommand of a service's command line (`sub` from `add_subparsers`)."""
    sub.add_parser(
        "republish",
        help="write every aggregate's current state to the outbox again (after restoring a database); "
        "consumers ignore versions they already have",
    )


def run_republish(settings: ServiceSettings, outbox: Table, aggregates: Sequence[RepublishedAggregate]) -> None:
    """Run `republish` for a service and print what was staged."""
    if not aggregates:
        sys.stdout.write(f"{settings.service_name} publishes no aggregates yet: nothing to republish\n")
        return

    async def main() -> dict[str, int]:
        engine = create_engine(settings.database_url)
        try:
            return await republish(session_factory(engine), outbox, aggregates, settings=settings)
        finally:
            await engine.dispose()

    counts = run_async(main())
    staged = ", ".join(f"{count} {name}" for name, count in counts.items())
    sys.stdout.write(f"staged {staged} in the outbox; the {settings.service_name} relay publishes them\n")
