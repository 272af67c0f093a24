"""The audit record every service keeps: who changed what, when, which fields, old and new values.

One table per service database (`audit_table`, migrated with `common.migration_ops.create_audit_log`),
written in the same transaction as the change it records. Personal fields are recorded by name only:
their values never enter the audit record, so erasing a person leaves nothing of them behind here.
Entries older than the retention (`<SVC>_AUDIT_RETENTION_DAYS`) are purged by `purge_audit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from common.auth import CurrentPrincipal, Principal
from common.errors import PROBLEM, Forbidden
from common.query import no_unknown_query

log = logging.getLogger(__name__)
AUDIT_TABLE = "audit_log"
PERSONAL = "[personal]"  # stands for a personal field's old and new values


def audit_table(metadata: MetaData) -> Table:
    return Table(
        AUDIT_TABLE,
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("actor_sub", String(300), nullable=False),
        Column("actor_kind", String(16), nullable=False),
        Column("actor_code", String(32), nullable=False),
        Column("action", String(64), nullable=False),
        Column("entity", String(32), nullable=False),
        Column("entity_id", String(64), nullable=False),
        Column("changes", JSON, nullable=False),
        Index("ix_audit_log_entity", "entity", "entity_id", "id"),
        Index("ix_audit_log_at", "at"),
    )


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: dict[str, str]
    action: str
    entity: str
    entity_id: str
    changes: dict[str, dict[str, Any]]


def field_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *, personal: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """{field: {"old": …, "new": …}} for each field whose value differs between two states (None: the
    entity did not exist, or no longer does). A personal field shows as changed, with no values."""
    before, after = old or {}, new or {}
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if _plain(was) == _plain(now):
            continue
        if name in personal:
            changes[name] = {"old": PERSONAL if was is not None else None, "new": PERSONAL if now is not None else None}
        else:
            changes[name] = {"old": _plain(was), "new": _plain(now)}
    return changes


def _plain(value: Any) -> Any:
    """A JSON-storable form of a field value (dates as ISO text, tuples as lists)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    return value


async def record_audit(
    session: AsyncSession | AsyncConnection,
    table: Table,
    *,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str,
    changes: Mapping[str, Mapping[str, Any]],
    at: datetime | None = None,
) -> None:
    """Add one entry in the caller's transaction (it commits with the change it records)."""
    await session.execute(
        insert(table).values(
            audit_values(actor=actor, action=action, entity=entity, entity_id=entity_id, changes=changes, at=at)
        )
    )


def audit_values(
    *,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str,
    changes: Mapping[str, Mapping[str, Any]],
    at: datetime | None = None,
) -> dict[str, Any]:
    """The column values of one entry, for a writer that inserts many entries in one statement."""
    return {
        "at": at or datetime.now(UTC),
        "actor_sub": actor.sub[:300],
        "actor_kind": actor.org_kind,
        "actor_code": actor.org_code,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "changes": dict(changes),
    }


async def audit_history(
    session: AsyncSession | AsyncConnection,
    table: Table,
    *,
    entity: str,
    entity_id: str,
    after_id: int = 0,
    limit: int = 50,
) -> Sequence[AuditEntry]:
    """An entity's entries, oldest first, from after `after_id` (a cursor)."""
    rows = await session.execute(
        select(table)
        .where(table.c.entity == entity, table.c.entity_id == entity_id, table.c.id > after_id)
        .order_by(table.c.id)
        .limit(limit)
    )
    return [
        AuditEntry(
            id=row.id,
            at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),  # SQLite returns naive values
            actor={"sub": row.actor_sub, "kind": row.actor_kind, "code": row.actor_code},
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            changes=row.changes,
        )
        for row in rows
    ]


async def keep_audit_retention(
    engine: AsyncEngine, table: Table, *, retention_days: int, interval: float = 3600.0
) -> None:
    """Purge the entries past the retention now and every `interval` seconds, until cancelled (a task of
    the service's lifespan). Any replica may run it: a DELETE of old rows is harmless twice."""
    while True:
        try:
            async with engine.begin() as connection:
                purged = await purge_audit(connection, table, retention_days=retention_days)
            if purged:
                log.info("audit record: %d entries older than %d days purged", purged, retention_days)
        except Exception as exc:  # the database away, say: the next pass catches up
            log.warning("audit retention pass failed (%s); retrying in %.0f s", type(exc).__name__, interval)
        await asyncio.sleep(interval)


@asynccontextmanager
async def audit_retention(engine: AsyncEngine, table: Table, *, retention_days: int) -> AsyncIterator[None]:
    """`keep_audit_retention` as a task for the life of the block."""
    task = asyncio.create_task(keep_audit_retention(engine, table, retention_days=retention_days))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def purge_audit(session: AsyncSession | AsyncConnection, table: Table, *, retention_days: int) -> int:
    """Delete the entries older than the retention; returns how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    result = await session.execute(delete(table).where(table.c.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


class AuditPage(BaseModel):
    """An entity's audit entries, oldest first; `next_cursor` continues after the last one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 42,
                            "at": "2025-05-10T08:00:00Z",
                            "actor": {"sub": "province:440000", "kind": "province", "code": "440000"},
                            "action": "update",
                            "entity": "event",
                            "entity_id": "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b",
                            "changes": {"papers": {"old": 64, "new": 70}},
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[dict[str, Any]] = Field(
        description="`{id, at, actor: {sub, kind, code}, action, entity, entity_id, changes: {field: {old, new}}}`"
    )
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last.")


def _problem(status: int, title: str, description: str, detail: str) -> dict[str, Any]:
    example = {"type": f"https://exchange-tracker.dev/problems/{status}", "title": title, "status": status}
    return {"description": description, "content": {PROBLEM: {"example": example | {"detail": detail}}}}


# No control characters: PostgreSQL cannot compare a NUL (a 422 the document should announce, not a surprise).
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def audit_router(prefix: str, table: Table) -> APIRouter:
    """`GET {prefix}/audit?entity=&entity_id=`: the audit record of one entity, for `admin` only. It reads
    the service's database through its `ServiceRuntime` (`app.state.runtime.engine`)."""
    # Unknown query parameters are 422 (common.query), as on the services' own routes.
    router = APIRouter(prefix=prefix, tags=["audit"], dependencies=[Depends(no_unknown_query)])

    @router.get(
        "/audit",
        summary="Who changed an entity, when, and how (admin)",
        response_model=AuditPage,
        responses={
            401: _problem(401, "Unauthorized", "No valid token", "The token has expired."),
            403: _problem(
                403, "Forbidden", "Not an `admin` token of HQ", "The audit record is for `admin` tokens of HQ."
            ),
            422: _problem(422, "Validation failed", "Invalid parameters", "query.entity_id: Field required"),
        },
    )
    async def read_audit(
        request: Request,
        principal: CurrentPrincipal,
        entity: Annotated[
            str,
            Query(min_length=1, max_length=32, pattern=_PRINTABLE, description="The kind of entity, e.g. `agreement`."),
        ],
        entity_id: Annotated[
            str, Query(min_length=1, max_length=64, pattern=_PRINTABLE, description="The entity's id.")
        ],
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of a page.")] = None,
    ) -> dict[str, Any]:
        if not principal.is_admin:
            raise Forbidden("The audit record is for `admin` tokens of HQ.")
        engine: AsyncEngine = request.app.state.runtime.engine
        async with engine.connect() as connection:
            entries = await audit_history(
                connection, table, entity=entity, entity_id=entity_id, after_id=int(cursor or 0), limit=limit + 1
            )
        items = [
            {
                "id": e.id,
                "at": e.at.isoformat().replace("+00:00", "Z"),
                "actor": e.actor,
                "action": e.action,
                "entity": e.entity,
                "entity_id": e.entity_id,
                "changes": e.changes,
            }
            for e in entries[:limit]
        ]
        return {"items": items, "next_cursor": str(entries[limit - 1].id) if len(entries) > limit else None}

    return router
