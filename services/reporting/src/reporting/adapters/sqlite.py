"""SQLite's side of reporting's ports (local use, one process): the `ProjectionWriter` through SQLAlchemy
Core, bulk upserts in chunks, and the `GenerationStore`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.tables import (
    aggregates,
    agreement_orgs,
    agreement_regions,
    bodies,
    country_refs,
    event_facts,
    generation,
    metrics,
)
from reporting.projections.attribution import Contribution
from reporting.projections.event_facts import EventFacts, decode_countries
from reporting.projections.ports import StoredAggregate, Writes

CHUNK = 5000  # rows per statement: under SQLite's bound-parameter limit


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def stored_aggregate(version: int, facts: str | None, contribution: str) -> StoredAggregate:
    return StoredAggregate(
        int(version), json.loads(facts) if facts else None, Contribution.from_json(json.loads(contribution))
    )


def stored_event(row: Sequence[Any]) -> tuple[int, EventFacts]:
    """(version, facts) of an rm_event_facts row selected as `EVENT_COLUMNS` (typed by the driver:
    the hot path of an update, so no conversion here)."""
    version, active, year, home, countries, body, type_, participants, foreign, papers, flagship = row
    return version, EventFacts(
        active, year, home, decode_countries(countries), body, type_, participants, foreign, papers, flagship
    )


EVENT_COLUMNS = (
    "version",
    "active",
    "year",
    "home",
    "countries",
    "body",
    "type",
    "participants",
    "foreign_participants",
    "papers",
    "flagship",
)


def event_values(facts: EventFacts) -> tuple[Any, ...]:
    """The facts as `EVENT_COLUMNS` after `version`."""
    return (
        facts.active,
        facts.year,
        facts.home,
        facts.countries.text,
        facts.body,
        facts.type,
        facts.participants,
        facts.foreign_participants,
        facts.papers,
        facts.flagship,
    )


class SqlProjectionWriter:
    """Portable SQL (SQLite's upsert dialect); the PostgreSQL writer replaces the hot statements."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def insert(self, table: Any) -> Any:
        return sqlite_insert(table)

    async def live_generation(self) -> int:
        value = await self.session.scalar(
            select(generation.c.current).where(generation.c.id == 1).with_for_update(read=True)
        )
        if value is None:
            raise RuntimeError("rm_generation is empty: run `reporting migrate`")
        return int(value)

    async def lock_partner_links(self, gen: int) -> None:
        """One process writes a SQLite file: nothing to take turns with."""

    async def load_aggregates(self, gen: int, kind: str, ids: Iterable[str]) -> dict[str, StoredAggregate]:
        t = aggregates.c
        found: dict[str, StoredAggregate] = {}
        for chunk in chunks(sorted(set(ids))):
            rows = await self.session.execute(
                select(t.id, t.version, t.facts, t.contribution).where(t.gen == gen, t.kind == kind, t.id.in_(chunk))
            )
            for row in rows:
                found[row.id] = stored_aggregate(row.version, row.facts, row.contribution)
        return found

    async def load_events(self, gen: int, ids: Iterable[str]) -> dict[str, tuple[int, EventFacts]]:
        t = event_facts.c
        columns = [t.id, *(t[name] for name in EVENT_COLUMNS)]
        found: dict[str, tuple[int, EventFacts]] = {}
        for chunk in chunks(list(ids)):
            for row in await self.session.execute(select(*columns).where(t.gen == gen, t.id.in_(chunk))):
                found[row[0]] = stored_event(row[1:])
        return found

    async def agreements_naming(self, gen: int, org_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(org_ids)):
            rows = await self.session.scalars(
                select(agreement_orgs.c.agreement_id).where(
                    agreement_orgs.c.gen == gen, agreement_orgs.c.org_id.in_(chunk)
                )
            )
            found.update(rows)
        return found

    async def write(self, gen: int, writes: Writes) -> None:
        await self.write_aggregates(gen, writes)
        await self.write_events(gen, writes)
        await self.add_deltas(gen, writes)
        await self.write_agreements(gen, writes)
        await self.write_bodies(gen, writes)

    async def write_aggregates(self, gen: int, writes: Writes) -> None:
        if not writes.aggregates:
            return
        stmt = self.insert(aggregates)
        stmt = stmt.on_conflict_do_update(
            index_elements=[aggregates.c.gen, aggregates.c.kind, aggregates.c.id],
            set_={
                "version": stmt.excluded.version,
                "facts": stmt.excluded.facts,
                "contribution": stmt.excluded.contribution,
                "changed_at": func.coalesce(stmt.excluded.changed_at, aggregates.c.changed_at),
            },
        )
        rows = [
            {
                "gen": gen,
                "kind": r.kind,
                "id": r.id,
                "version": r.version,
                "facts": dumps(r.facts) if r.facts is not None else None,
                "contribution": dumps(r.contribution.to_json()),
                "changed_at": r.changed_at,
            }
            for r in writes.aggregates
        ]
        for chunk in chunks(rows):
            await self.session.execute(stmt, list(chunk))

    async def write_events(self, gen: int, writes: Writes) -> None:
        if not writes.events:
            return
        stmt = self.insert(event_facts)
        stmt = stmt.on_conflict_do_update(
            index_elements=[event_facts.c.gen, event_facts.c.id],
            set_={name: stmt.excluded[name] for name in EVENT_COLUMNS},
        )
        rows = [
            {"gen": gen, "id": r.id, **dict(zip(EVENT_COLUMNS, (r.version, *event_values(r.facts)), strict=True))}
            for r in writes.events
        ]
        for chunk in chunks(rows):
            await self.session.execute(stmt, list(chunk))

    async def add_deltas(self, gen: int, writes: Writes) -> None:
        metric_rows = [
            {"gen": gen, "region": r, "year": y, "metric": m, "value": v}
            for (r, y, m), v in sorted(writes.metrics.items())
            if v
        ]
        if metric_rows:
            stmt = self.insert(metrics)
            stmt = stmt.on_conflict_do_update(
                index_elements=[metrics.c.gen, metrics.c.region, metrics.c.year, metrics.c.metric],
                set_={"value": metrics.c.value + stmt.excluded.value},
            )
            for chunk in chunks(metric_rows):
                await self.session.execute(stmt, list(chunk))
        ref_rows = [
            {"gen": gen, "kind": k, "region": r, "year": y, "country": c, "n": n}
            for (k, r, y, c), n in sorted(writes.refs.items())
            if n
        ]
        if ref_rows:
            stmt = self.insert(country_refs)
            c = country_refs.c
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.gen, c.kind, c.region, c.year, c.country],
                set_={"n": c.n + stmt.excluded.n},
            )
            for chunk in chunks(ref_rows):
                await self.session.execute(stmt, list(chunk))

    async def write_agreements(self, gen: int, writes: Writes) -> None:
        if not writes.rewritten_agreements:
            return
        for chunk in chunks(sorted(set(writes.rewritten_agreements))):
            await self.session.execute(
                delete(agreement_regions).where(
                    and_(agreement_regions.c.gen == gen, agreement_regions.c.agreement_id.in_(chunk))
                )
            )
            await self.session.execute(
                delete(agreement_orgs).where(
                    and_(agreement_orgs.c.gen == gen, agreement_orgs.c.agreement_id.in_(chunk))
                )
            )
        if writes.agreement_regions:
            await self.session.execute(
                self.insert(agreement_regions),
                [
                    {
                        "gen": gen,
                        "agreement_id": r.agreement_id,
                        "region": r.region,
                        "signed_year": r.signed_year,
                        "status": r.status,
                        "expires_on": r.expires_on,
                    }
                    for r in writes.agreement_regions
                ],
            )
        unique = sorted(set(writes.agreement_orgs))
        if unique:
            await self.session.execute(
                self.insert(agreement_orgs),
                [{"gen": gen, "org_id": org_id, "agreement_id": agreement_id} for org_id, agreement_id in unique],
            )

    async def write_bodies(self, gen: int, writes: Writes) -> None:
        if not writes.body_changes:
            return
        b = bodies.c
        stmt = self.insert(bodies)
        stmt = stmt.on_conflict_do_update(
            index_elements=[b.gen, b.kind, b.code],
            set_={"last_change": func.max(b.last_change, stmt.excluded.last_change)},
        )
        await self.session.execute(
            stmt,
            [
                {"gen": gen, "kind": k, "code": code, "last_change": at}
                for (k, code), at in sorted(writes.body_changes.items())
            ],
        )


class SqlGenerationStore:
    """SQLite: one process, and a session is one BEGIN IMMEDIATE transaction (common/db.py)."""

    replays_in_processes = False  # one process writes a SQLite file

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def read_one_snapshot(self) -> None:
        """The session's one transaction reads one snapshot already, and no swap commits inside it."""

    async def lock_rebuilds(self) -> bool:
        """Nothing to take: SQLite has no lock a session can hold without holding off every writer, the
        rebuild's own transactions among them."""
        return True

    async def announce_swap(self, regions: Iterable[str]) -> None:
        """No channel between processes: the serving process's stream hears only of its own consumer's changes."""
