"""PostgreSQL's side of reporting's ports: the `ProjectionWriter`, the fast path of the projections, and
the `GenerationStore`.

Rows travel as arrays (one bind per column) through `unnest`, so each statement is one round trip
whatever the batch size, straight on the asyncpg connection under the session's transaction; keys are
sorted, so concurrent consumers (`serve --workers`, `rebuild --workers`) lock rows in the same order.
Changed regions are announced on a NOTIFY channel (`announce`), which every process's stream listens to
(stream/changes_channel.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.db import asyncpg_connection
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.sqlite import EVENT_COLUMNS, SqlProjectionWriter, dumps, stored_aggregate, stored_event
from reporting.projections.event_facts import EventFacts
from reporting.projections.ports import ConcurrentApply, EventRow, StoredAggregate, Writes

PARTNER_LINKS_LOCK = 7_304_222  # an arbitrary advisory-lock key (with the generation), the same in every process
REBUILD_LOCK = 7_304_221  # an arbitrary advisory-lock key, the same in every process
CHANNEL = "reporting_changes"
MAX_PAYLOAD = 7000  # PostgreSQL's limit is 8000 bytes per notification

_LOAD = (
    "SELECT id, version, facts, contribution FROM rm_aggregates WHERE gen = $1 AND kind = $2 AND id = ANY($3::text[])"
)
_LOAD_EVENTS = f"SELECT id, {', '.join(EVENT_COLUMNS)} FROM rm_event_facts WHERE gen = $1 AND id = ANY($2::text[])"
_STATE_UPSERT = """
INSERT INTO rm_aggregates (gen, kind, id, version, facts, contribution, changed_at)
SELECT $1, k, i, v, f, c, t FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[])
    AS s(k, i, v, f, c, t)
ON CONFLICT (gen, kind, id) DO UPDATE SET version = excluded.version, facts = excluded.facts,
    contribution = excluded.contribution, changed_at = coalesce(excluded.changed_at, rm_aggregates.changed_at)
"""
_EVENT_ARRAYS = "$2::text[], $3::bigint[], $4::bool[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], "
_EVENT_ARRAYS += "$10::bigint[], $11::bigint[], $12::bigint[], $13::bool[]"
_EVENTS_COPY_COLUMNS = ("gen", "id", *EVENT_COLUMNS)
_EVENTS_UPDATE = f"""
UPDATE rm_event_facts SET {", ".join(f"{c} = u.{c}" for c in EVENT_COLUMNS)}
FROM unnest({_EVENT_ARRAYS}, $14::bigint[]) AS u(id, {", ".join(EVENT_COLUMNS)}, loaded_version)
WHERE rm_event_facts.gen = $1 AND rm_event_facts.id = u.id AND rm_event_facts.version = u.loaded_version
"""
_METRICS_UPSERT = """
INSERT INTO rm_metrics (gen, region, year, metric, value)
SELECT $1, r, y, m, v FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[]) AS d(r, y, m, v)
ON CONFLICT (gen, region, year, metric) DO UPDATE SET value = rm_metrics.value + excluded.value
"""
_REFS_UPSERT = """
INSERT INTO rm_country_refs (gen, kind, region, year, country, n)
SELECT $1, k, r, y, c, n FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::int[]) AS d(k, r, y, c, n)
ON CONFLICT (gen, kind, region, year, country) DO UPDATE SET n = rm_country_refs.n + excluded.n
"""
_BODIES_UPSERT = """
INSERT INTO rm_bodies (gen, kind, code, last_change)
SELECT $1, k, c, t FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS b(k, c, t)
ON CONFLICT (gen, kind, code) DO UPDATE SET last_change = greatest(rm_bodies.last_change, excluded.last_change)
"""


class PostgresProjectionWriter(SqlProjectionWriter):
    def insert(self, table: Any) -> Any:
        return pg_insert(table)

    async def _driver(self) -> Any:
        return await asyncpg_connection(self.session)

    async def lock_partner_links(self, gen: int) -> None:
        """An agreement's figures need its organizations' countries, and an organization's change
        re-attributes the agreements naming them. The two usually arrive on different partitions, so two
        consumers may apply them at once, and each would miss the other's uncommitted rows under READ
        COMMITTED. Batches holding either kind take turns in a generation: the later one reads after the
        earlier one committed. Partner records are few."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key, :gen)"), {"key": PARTNER_LINKS_LOCK, "gen": gen}
        )

    async def load_aggregates(self, gen: int, kind: str, ids: Iterable[str]) -> dict[str, StoredAggregate]:
        driver = await self._driver()
        records = await driver.fetch(_LOAD, gen, kind, sorted(set(ids)))
        return {r[0]: stored_aggregate(r[1], r[2], r[3]) for r in records}

    async def load_events(self, gen: int, ids: Iterable[str]) -> dict[str, tuple[int, EventFacts]]:
        driver = await self._driver()
        return {r[0]: stored_event(r[1:]) for r in await driver.fetch(_LOAD_EVENTS, gen, list(ids))}

    async def write(self, gen: int, writes: Writes) -> None:
        driver = await self._driver()
        if writes.aggregates:
            rows = sorted(writes.aggregates, key=lambda r: (r.kind, r.id))
            await driver.execute(
                _STATE_UPSERT,
                gen,
                [r.kind for r in rows],
                [r.id for r in rows],
                [r.version for r in rows],
                [dumps(r.facts) if r.facts is not None else None for r in rows],
                [dumps(r.contribution.to_json()) for r in rows],
                [r.changed_at for r in rows],
            )
        if writes.events:
            await self._write_events(driver, gen, writes)
        await _upsert_deltas(driver, _METRICS_UPSERT, gen, writes.metrics)
        await _upsert_deltas(driver, _REFS_UPSERT, gen, writes.refs)
        await self.write_agreements(gen, writes)
        if writes.body_changes:
            keys = sorted(writes.body_changes)
            await driver.execute(
                _BODIES_UPSERT,
                gen,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [writes.body_changes[k] for k in keys],
            )

    async def _write_events(self, driver: Any, gen: int, writes: Writes) -> None:
        """Most events arrive once: those not stored yet go in with a binary COPY, the cheapest insert on
        both sides (bench/reporting/README.md: asyncpg checks every element of an array parameter, and a
        row of typed columns would take one array per column); the others are updated only from the version
        this batch subtracted. A row inserted or changed by another consumer since it was loaded fails the
        COPY on the primary key, or the UPDATE's version check: never a contribution subtracted twice."""
        loaded = writes.loaded_event_versions
        new = [r for r in writes.events if r.id not in loaded]
        if new:
            await driver.copy_records_to_table(
                "rm_event_facts", records=_event_records(gen, new), columns=_EVENTS_COPY_COLUMNS
            )
        changed = [r for r in writes.events if r.id in loaded] if loaded else []
        if changed:
            status = await driver.execute(_EVENTS_UPDATE, gen, *_event_arrays(changed), [loaded[r.id] for r in changed])
            if int(status.rsplit(" ", 1)[1]) != len(changed):
                raise ConcurrentApply("events of this batch were changed by another consumer meanwhile")


def _event_records(gen: int, rows: list[EventRow]) -> list[tuple[Any, ...]]:
    """One tuple per row, in `_EVENTS_COPY_COLUMNS`' order."""
    return [
        (
            gen,
            r.id,
            r.version,
            (f := r.facts).active,
            f.year,
            f.home,
            f.countries.text,
            f.body,
            f.type,
            f.participants,
            f.foreign_participants,
            f.papers,
            f.flagship,
        )
        for r in rows
    ]


def _event_arrays(rows: list[EventRow]) -> list[list[Any]]:
    """One array per column: id, version, then the facts' columns (`EVENT_COLUMNS`)."""
    facts = [r.facts for r in rows]
    return [
        [r.id for r in rows],
        [r.version for r in rows],
        [f.active for f in facts],
        [f.year for f in facts],
        [f.home for f in facts],
        [f.countries.text for f in facts],
        [f.body for f in facts],
        [f.type for f in facts],
        [f.participants for f in facts],
        [f.foreign_participants for f in facts],
        [f.papers for f in facts],
        [f.flagship for f in facts],
    ]


async def _upsert_deltas(driver: Any, statement: str, gen: int, deltas: dict[Any, int]) -> None:
    """The non-zero deltas as one array per key column plus one of values; keys sorted, so every
    consumer locks rows in the same order."""
    keys = sorted(k for k, v in deltas.items() if v)
    if keys:
        await driver.execute(
            statement, gen, *(list(column) for column in zip(*keys, strict=True)), [deltas[k] for k in keys]
        )


class PostgresGenerationStore:
    """PostgreSQL: snapshots and advisory locks per transaction; every process listens for announcements."""

    replays_in_processes = True

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def read_one_snapshot(self) -> None:
        """One REPEATABLE READ read-only transaction: the read engine otherwise autocommits each
        statement, each with its own snapshot."""
        await self.session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )

    async def lock_rebuilds(self) -> bool:
        """A transaction-level advisory lock: it ends with the transaction, never left on a pooled connection."""
        return bool(await self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK}))

    async def announce_swap(self, regions: Iterable[str]) -> None:
        await announce(self.session, regions)


def payloads(regions: Iterable[str]) -> list[str]:
    """The regions, comma-separated, split into notifications under the size limit."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for region in sorted(regions):
        if current and size + len(region) + 1 > MAX_PAYLOAD:
            chunks.append(",".join(current))
            current, size = [], 0
        current.append(region)
        size += len(region) + 1
    if current:
        chunks.append(",".join(current))
    return chunks


async def announce(session: AsyncSession, regions: Iterable[str]) -> None:
    """Queue the notifications in the session's transaction (sent by PostgreSQL at its commit)."""
    chunks = payloads(regions)
    if chunks:
        driver = await asyncpg_connection(session)
        await driver.execute("SELECT pg_notify($1, c) FROM unnest($2::text[]) AS c", CHANNEL, chunks)
