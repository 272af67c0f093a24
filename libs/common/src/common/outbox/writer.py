"""Adding messages to the outbox inside the caller's transaction, and waking the relay after commit."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from common.envelope import CloudEvent
from common.observability import traceparent_var

_PENDING = "outbox_pending"


def _row(message: CloudEvent, topic: str, now: datetime) -> dict[str, object]:
    traceparent = traceparent_var.get()
    headers = {"content-type": "application/cloudevents+json", "ce_type": message.type}
    if traceparent:
        headers["traceparent"] = traceparent
    return {
        "event_id": message.id,
        "topic": topic,
        "key": message.subject,
        "payload": message.model_dump_json(),
        "headers": json.dumps(headers),
        "created_at": now,
        "sent_at": None,
    }


async def add_to_outbox(session: AsyncSession, outbox: Table, message: CloudEvent, topic: str) -> None:
    """Stage `message` for `topic`; it is published only if the caller's transaction commits."""
    await add_many_to_outbox(session, outbox, [message], topic)


async def add_many_to_outbox(session: AsyncSession, outbox: Table, messages: Sequence[CloudEvent], topic: str) -> None:
    if not messages:
        return
    now = datetime.now(UTC)
    await session.execute(insert(outbox), [_row(m, topic, now) for m in messages])
    session.info[_PENDING] = True


def install_wakeup(factory: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> None:
    """Call `wake` after every commit that staged outbox messages (an in-process nudge, no NOTIFY)."""

    class WakingSession(Session):
        pass

    @event.listens_for(WakingSession, "after_commit")
    def _after_commit(session: Session) -> None:
        if session.info.pop(_PENDING, False):
            wake()

    @event.listens_for(WakingSession, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_PENDING, None)

    factory.configure(sync_session_class=WakingSession)
