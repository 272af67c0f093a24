"""Adding messages to the outbox inside the caller's transaction, and waking the relay after commit."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from common.envelope import CloudEvent
from common.errors import Unprocessable
from common.observability import traceparent_var

_PENDING = "outbox_pending"

# The contract: a published message (key, value and headers) stays under 256 KiB. The broker takes up
# to 1 MiB, but consumers hold the same bound on what they read.
MAX_MESSAGE_BYTES = 256 * 1024


class MessageTooLarge(Unprocessable, ValueError):
    """A change whose message would pass the size bound: refused (422) before anything is written,
    naming the field of the message's data that weighs most. A ValueError too, so a group of writes
    it fails is retried one by one and fails only its own request."""

    def __init__(self, size: int, limit: int, data: Mapping[str, Any] | None) -> None:
        field = largest_field(data)
        super().__init__(
            f"The change would be published as a message of {size} bytes; a message stays under {limit} bytes"
            + (f": make `{field}` shorter." if field else "."),
            errors=[
                {"loc": ["body", field] if field else ["body"], "msg": f"the published message would be {size} bytes"}
            ],
        )
        self.size = size
        self.field = field


def largest_field(data: Mapping[str, Any] | None) -> str | None:
    """The top-level field of `data` whose JSON is longest (only computed for a refusal)."""
    if not isinstance(data, Mapping) or not data:
        return None
    return max(data, key=lambda name: len(json.dumps(data[name], ensure_ascii=False, default=str)))


def check_message_size(
    key: str, payload: str | bytes, headers: str, data: Mapping[str, Any] | None, limit: int = MAX_MESSAGE_BYTES
) -> None:
    """Raise `MessageTooLarge` if the message would not stay under `limit` bytes. Cheap on the hot path:
    a text's UTF-8 form is at most 4 bytes a character, so most messages are never encoded to count."""
    chars = len(key) + len(payload) + len(headers)
    if (chars if isinstance(payload, bytes) else 4 * chars) < limit:
        return
    value = payload if isinstance(payload, bytes) else payload.encode()
    size = len(key.encode()) + len(value) + len(headers.encode())
    if size >= limit:
        raise MessageTooLarge(size, limit, data)


def _row(message: CloudEvent, topic: str, now: datetime, max_message_bytes: int) -> dict[str, object]:
    traceparent = traceparent_var.get()
    headers = {"content-type": "application/cloudevents+json", "ce_type": message.type}
    if traceparent:
        headers["traceparent"] = traceparent
    payload, header_text = message.model_dump_json(), json.dumps(headers)
    check_message_size(message.subject, payload, header_text, message.data, max_message_bytes)
    return {
        "event_id": message.id,
        "topic": topic,
        "key": message.subject,
        "payload": payload,
        "headers": header_text,
        "created_at": now,
        "sent_at": None,
    }


async def add_to_outbox(
    session: AsyncSession,
    outbox: Table,
    message: CloudEvent,
    topic: str,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> None:
    """Stage `message` for `topic`; it is published only if the caller's transaction commits. A message
    that would pass `max_message_bytes` raises `MessageTooLarge` (422) and nothing is staged."""
    await add_many_to_outbox(session, outbox, [message], topic, max_message_bytes=max_message_bytes)


async def add_many_to_outbox(
    session: AsyncSession,
    outbox: Table,
    messages: Sequence[CloudEvent],
    topic: str,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> None:
    if not messages:
        return
    await session.execute(insert(outbox), outbox_rows(messages, topic, max_message_bytes=max_message_bytes))
    session.info[_PENDING] = True


def outbox_rows(
    messages: Sequence[CloudEvent], topic: str, *, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> list[dict[str, object]]:
    """The outbox rows of `messages` (column → value), for a writer that inserts them itself in bulk
    (a driver's multi-row statement): the same rows `add_many_to_outbox` inserts. Raises
    `MessageTooLarge` if any message would pass the size bound."""
    now = datetime.now(UTC)
    return [_row(m, topic, now, max_message_bytes) for m in messages]


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
