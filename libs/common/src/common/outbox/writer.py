"""The one place a message is made (`outbox_message`: the CloudEvent of a change and its outbox values,
for the ORM path and the bulk statements alike), staging messages inside the caller's transaction, and
waking the relay after commit."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from common.envelope import CONTENT_TYPE
from common.errors import Unprocessable
from common.ids import new_message_id
from common.observability import traceparent_var
from common.outbox.table import OUTBOX_TABLE

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


class OutboxMessage(NamedTuple):
    """One CloudEvent as the outbox stores it: the row's values but for the topic and the time.
    Built only by `outbox_message`; the ORM path (`stage`) and a service's bulk statements both
    write these values, so the envelope and the row have one definition."""

    event_id: str  # the CloudEvent id
    key: str  # the Kafka key: the CloudEvent subject, the aggregate id
    payload: str  # the CloudEvent, JSON structured mode
    headers: str  # the Kafka headers, as a JSON object


# The outbox columns a writer fills (the table: common.outbox.table); `id` is the database's.
OUTBOX_COLUMNS = ("event_id", "topic", "key", "payload", "headers", "created_at")
_OUTBOX_ARRAY_TYPES = {"created_at": "timestamptz"}  # the others travel as text


def outbox_insert(values: Sequence[str]) -> str:
    """`INSERT INTO outbox (<OUTBOX_COLUMNS>) SELECT <values>`: the head of a bulk statement, one SQL
    expression per column in `OUTBOX_COLUMNS`' order; the caller adds its FROM (a CTE's rows, unnest
    arrays). Callers build their statements once at import: the bulk paths are hot."""
    if len(values) != len(OUTBOX_COLUMNS):
        raise ValueError(f"one value per outbox column ({', '.join(OUTBOX_COLUMNS)}), got {len(values)}")
    return f"INSERT INTO {OUTBOX_TABLE} ({', '.join(OUTBOX_COLUMNS)}) SELECT {', '.join(values)}"


def outbox_unnest_insert(first_param: int = 1) -> str:
    """The INSERT of many outbox rows for asyncpg: one array per column in `OUTBOX_COLUMNS`' order,
    parameters `$first_param`... (the values `outbox_rows` builds, transposed)."""
    arrays = ", ".join(
        f"${first_param + i}::{_OUTBOX_ARRAY_TYPES.get(name, 'text')}[]" for i, name in enumerate(OUTBOX_COLUMNS)
    )
    columns = ", ".join(OUTBOX_COLUMNS)
    return f"{outbox_insert([f'u.{name}' for name in OUTBOX_COLUMNS])} FROM unnest({arrays}) AS u({columns})"


def message_headers(event_type: str) -> str:
    """The Kafka headers of a message of `event_type`, with the current request's trace context.
    A caller building many messages of one type in one request builds these once."""
    headers = {"content-type": CONTENT_TYPE, "ce_type": event_type}
    if traceparent := traceparent_var.get():
        headers["traceparent"] = traceparent
    return json.dumps(headers)


def cloudevent_time(now: datetime) -> str:
    """A UTC time as the envelope writes it (RFC 3339, `Z`)."""
    return now.isoformat().replace("+00:00", "Z")


def outbox_message(
    *,
    source: str,
    type: str,
    subject: str,
    data: Mapping[str, Any],
    headers: str | None = None,
    message_id: str | None = None,
    time: str | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> OutboxMessage:
    """The CloudEvent of one change (the contract's envelope, `common.envelope.CloudEventFields`) and
    its outbox values. `data` must be JSON-ready apart from what orjson writes natively (dates, UUIDs):
    it is serialised by orjson directly, which writes these dicts in a third of pydantic-core's time
    and costs less than a model per message on the bulk paths. A batch passes its ids, time and
    headers, made once for all its messages. Raises `MessageTooLarge` when the message would not stay
    under `max_message_bytes`."""
    message_id = message_id or new_message_id()
    headers = headers if headers is not None else message_headers(type)
    envelope = {
        "specversion": "1.0",
        "id": message_id,
        "source": source,
        "type": type,
        "subject": subject,
        "time": time or cloudevent_time(datetime.now(UTC)),
        "datacontenttype": "application/json",
        "data": data,
    }
    payload = orjson.dumps(envelope)
    check_message_size(subject, payload, headers, data, max_message_bytes)
    return OutboxMessage(message_id, subject, payload.decode(), headers)


class MessageBatch:
    """The messages of one commit or batch from one source, made with one time and one set of headers per
    type for them all (`outbox_message` for each)."""

    def __init__(self, source: str, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.source = source
        self.max_message_bytes = max_message_bytes
        self.time = cloudevent_time(datetime.now(UTC))
        self.headers: dict[str, str] = {}

    def message(
        self, type: str, subject: str, data: Mapping[str, Any], *, message_id: str | None = None
    ) -> OutboxMessage:
        headers = self.headers.get(type)
        if headers is None:
            headers = self.headers[type] = message_headers(type)
        return outbox_message(
            source=self.source,
            type=type,
            subject=subject,
            data=data,
            headers=headers,
            message_id=message_id,
            time=self.time,
            max_message_bytes=self.max_message_bytes,
        )


def outbox_rows(messages: Sequence[OutboxMessage], topic: str, now: datetime) -> list[dict[str, object]]:
    """The outbox rows (`OUTBOX_COLUMNS`) of `messages` for `topic`, staged at `now`."""
    return [
        {
            "event_id": m.event_id,
            "topic": topic,
            "key": m.key,
            "payload": m.payload,
            "headers": m.headers,
            "created_at": now,
        }
        for m in messages
    ]


async def stage(session: AsyncSession, outbox: Table, messages: Sequence[OutboxMessage], topic: str) -> None:
    """Stage `messages` for `topic` in the caller's transaction; they are published only if it commits,
    and the relay is woken after that commit (`install_wakeup`)."""
    if not messages:
        return
    await session.execute(insert(outbox), outbox_rows(messages, topic, datetime.now(UTC)))
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
