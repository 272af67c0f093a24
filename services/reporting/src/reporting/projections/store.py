"""Applying a batch of changes to one generation of the projections, inside the caller's transaction.

Per aggregate only the newest version in the batch matters (messages carry the whole state); a version
not newer than the one applied is ignored. The batch's effect is computed in memory as deltas — old
contribution subtracted, new one added — and written with a few bulk upserts, sorted so that
concurrent consumers lock rows in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.db import asyncpg_connection
from sqlalchemy import and_, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from reporting.adapters.tables import (
    aggregates,
    agreement_orgs,
    agreement_regions,
    bodies,
    country_refs,
    event_facts,
    metrics,
)
from reporting.contracts.inbound import AgreementState, EventState, OrganizationState, PersonState
from reporting.projections.attribution import (
    BODY_PREFIX,
    EMPTY,
    Contribution,
    MetricKey,
    RefKey,
    agreement_contribution,
    agreement_facts,
    agreement_rows,
    expand_merged,
    merged_blocks,
    organization_contribution,
    organization_facts,
    person_contribution,
)
from reporting.projections.changes import Change
from reporting.projections.event_facts import EventDeltas, EventFacts
from reporting.projections.event_facts import event_facts as facts_of_event

CHUNK = 5000


@dataclass
class _Stored:
    version: int
    facts: dict[str, Any] | None
    contribution: Contribution


@dataclass
class _Writes:
    """Everything a batch writes, gathered in memory first."""

    state_rows: list[dict[str, Any]] = field(default_factory=list)  # rm_aggregates (not events)
    event_rows: list[tuple[str, int, datetime, EventFacts]] = field(default_factory=list)  # id, version, time
    stored_event_versions: dict[str, int] = field(default_factory=dict)  # the events loaded: their versions
    metrics: dict[MetricKey, int] = field(default_factory=dict)  # deltas
    refs: dict[RefKey, int] = field(default_factory=dict)  # deltas
    rewritten_agreements: list[str] = field(default_factory=list)
    agreement_region_rows: list[dict[str, Any]] = field(default_factory=list)
    agreement_org_rows: list[dict[str, Any]] = field(default_factory=list)
    body_changes: dict[tuple[str, str], datetime] = field(default_factory=dict)  # latest change per body


@dataclass
class BatchResult:
    applied: int = 0
    ignored: int = 0
    changed_regions: set[str] = field(default_factory=set)


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: AsyncSession) -> Any:
    return pg_insert if _is_postgresql(session) else sqlite_insert


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def _load(session: AsyncSession, gen: int, kind: str, ids: Iterable[str]) -> dict[str, _Stored]:
    wanted = sorted(set(ids))
    found: dict[str, _Stored] = {}
    if _is_postgresql(session):
        driver = await asyncpg_connection(session)
        for record in await driver.fetch(_LOAD, gen, kind, wanted):
            found[record[0]] = _Stored(
                record[1],
                json.loads(record[2]) if record[2] else None,
                Contribution.from_json(json.loads(record[3])),
            )
        return found
    t = aggregates.c
    for chunk in _chunks(wanted):
        rows = await session.execute(
            select(t.id, t.version, t.facts, t.contribution).where(t.gen == gen, t.kind == kind, t.id.in_(chunk))
        )
        for row in rows:
            found[row.id] = _Stored(
                row.version,
                json.loads(row.facts) if row.facts else None,
                Contribution.from_json(json.loads(row.contribution)),
            )
    return found


PARTNER_LINKS_LOCK = 7_304_222  # an arbitrary advisory-lock key (with the generation), the same in every process


async def _lock_partner_links(session: AsyncSession, gen: int) -> None:
    """An agreement's figures need its organizations' countries, and an organization's change
    re-attributes the agreements naming them. The two usually arrive on different partitions, so two
    consumers (`serve --workers`, `rebuild --workers`) may apply them at once, and each would miss
    the other's uncommitted rows under READ COMMITTED. Batches holding either kind take turns in a
    generation: the later one reads after the earlier one committed. Partner records are few."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key, :gen)"), {"key": PARTNER_LINKS_LOCK, "gen": gen})


async def apply_changes(session: AsyncSession, gen: int, changes: Sequence[Change]) -> BatchResult:
    result = BatchResult()
    events: dict[str, Change] = {}  # the newest version of each aggregate in the batch, events apart
    by_kind: dict[str, dict[str, Change]] = {}
    for change in changes:
        newest = events if change.kind == "event" else by_kind.setdefault(change.kind, {})
        current = newest.get(change.id)
        if current is None or change.version > current.version:
            newest[change.id] = change
    result.ignored = len(changes) - len(events) - sum(map(len, by_kind.values()))

    writes = _Writes()
    await _apply_events(session, gen, events, writes, result)

    if ("organization" in by_kind or "agreement" in by_kind) and _is_postgresql(session):
        await _lock_partner_links(session, gen)
    stored: dict[str, dict[str, _Stored]] = {}
    for kind, items in by_kind.items():
        stored[kind] = await _load(session, gen, kind, items)

    fresh: dict[tuple[str, str], Change] = {}
    for kind, items in by_kind.items():
        for aggregate_id, change in items.items():
            previous = stored[kind].get(aggregate_id)
            if previous is not None and change.version <= previous.version:
                result.ignored += 1  # an older (or the same) version than the one applied
                continue
            fresh[(kind, aggregate_id)] = change

    # Organizations whose country changed re-attribute the agreements naming them.
    org_facts_new: dict[str, dict[str, Any] | None] = {}
    for (kind, aggregate_id), change in fresh.items():
        if kind == "organization":
            org_state = change.state if isinstance(change.state, OrganizationState) else None
            org_facts_new[aggregate_id] = organization_facts(org_state)
    agreements_to_recompute: set[str] = set()
    if org_facts_new:
        stored_orgs = stored.get("organization", {})
        changed_orgs = [
            o for o, facts in org_facts_new.items() if (stored_orgs[o].facts if o in stored_orgs else None) != facts
        ]
        for chunk in _chunks(sorted(changed_orgs)):
            rows = await session.scalars(
                select(agreement_orgs.c.agreement_id).where(
                    agreement_orgs.c.gen == gen, agreement_orgs.c.org_id.in_(chunk)
                )
            )
            agreements_to_recompute.update(rows)
    agreements_to_recompute -= {i for (k, i) in fresh if k == "agreement"}
    stored_agreements = stored.setdefault("agreement", {})
    if agreements_to_recompute:
        stored_agreements.update(await _load(session, gen, "agreement", agreements_to_recompute))

    # The organizations' countries the agreements need: this batch's first, then the stored ones.
    needed_orgs: set[str] = set()
    new_agreement_facts: dict[str, dict[str, Any]] = {}
    for (kind, aggregate_id), change in fresh.items():
        if kind == "agreement" and isinstance(change.state, AgreementState):
            new_agreement_facts[aggregate_id] = agreement_facts(change.state)
    for aggregate_id in agreements_to_recompute:
        facts = stored_agreements[aggregate_id].facts
        if facts is not None:
            new_agreement_facts[aggregate_id] = facts
    for facts in new_agreement_facts.values():
        needed_orgs.update(facts["partner_org_ids"])
    org_country: dict[str, str | None] = {o: (f or {}).get("country") for o, f in org_facts_new.items()}
    missing = needed_orgs - set(org_country)
    if missing:
        for org_id, org in (await _load(session, gen, "organization", missing)).items():
            org_country[org_id] = (org.facts or {}).get("country")

    signed: list[tuple[Contribution, int]] = []
    state_rows = writes.state_rows
    body_changes = writes.body_changes

    def account(kind: str, aggregate_id: str, version: int, at: datetime | None, facts: Any, new: Contribution) -> None:
        previous = stored.get(kind, {}).get(aggregate_id)
        if previous is not None:
            signed.append((previous.contribution, -1))
            result.changed_regions |= previous.contribution.regions()
        signed.append((new, +1))
        result.changed_regions |= new.regions()
        state_rows.append(
            {
                "gen": gen,
                "kind": kind,
                "id": aggregate_id,
                "version": version,
                "facts": _dumps(facts) if facts is not None else None,
                "contribution": _dumps(new.to_json()),
                "changed_at": at,
            }
        )

    for (kind, aggregate_id), change in sorted(fresh.items()):
        state = change.state
        if kind == "organization":
            facts = org_facts_new[aggregate_id]
            account(kind, aggregate_id, change.version, change.at, facts, organization_contribution(facts))
        elif kind == "person":
            contribution = person_contribution(state if isinstance(state, PersonState) else None)
            account(kind, aggregate_id, change.version, change.at, None, contribution)
        elif kind == "agreement":
            a_facts: dict[str, Any] | None = new_agreement_facts.get(aggregate_id)
            contribution = agreement_contribution(a_facts, org_country.get) if a_facts else EMPTY
            account(kind, aggregate_id, change.version, change.at, a_facts, contribution)
            writes.rewritten_agreements.append(aggregate_id)
            if a_facts:
                _agreement_rows(gen, aggregate_id, a_facts, contribution, writes)
        if change.body is not None:
            previous_at = body_changes.get(change.body)
            if previous_at is None or change.at > previous_at:
                body_changes[change.body] = change.at
        result.applied += 1
    for aggregate_id in sorted(agreements_to_recompute):
        previous_agreement = stored_agreements.get(aggregate_id)
        facts = new_agreement_facts.get(aggregate_id)
        if previous_agreement is None or facts is None:
            continue
        contribution = agreement_contribution(facts, org_country.get)
        account("agreement", aggregate_id, previous_agreement.version, None, facts, contribution)
        writes.rewritten_agreements.append(aggregate_id)
        _agreement_rows(gen, aggregate_id, facts, contribution, writes)

    expand_merged(merged_blocks(signed), writes.metrics)
    for contribution, sign in signed:
        contribution.add_refs_to(writes.refs, sign)
    await _write(session, gen, writes)
    result.changed_regions = {r for r in result.changed_regions if not r.startswith(BODY_PREFIX)}
    return result


def _agreement_rows(
    gen: int,
    aggregate_id: str,
    facts: dict[str, Any],
    contribution: Contribution,
    writes: _Writes,
) -> None:
    rows = agreement_rows(facts, contribution)
    for region in rows.regions:
        writes.agreement_region_rows.append(
            {
                "gen": gen,
                "agreement_id": aggregate_id,
                "region": region,
                "signed_year": rows.signed_year,
                "status": rows.status,
                "expires_on": rows.expires_on,
            }
        )
    for org_id in facts["partner_org_ids"]:
        writes.agreement_org_rows.append({"gen": gen, "org_id": org_id, "agreement_id": aggregate_id})


async def _apply_events(
    session: AsyncSession,
    gen: int,
    newest: dict[str, Change],
    writes: _Writes,
    result: BatchResult,
) -> None:
    """The events' fast path: old facts subtracted, new ones added, summed, then expanded once (the
    first to write deltas into `writes`); the facts rows to store are added sorted by id."""
    if not newest:
        return
    stored = await _load_event_facts(session, gen, newest)
    writes.stored_event_versions.update((i, s[0]) for i, s in stored.items())
    deltas = EventDeltas()
    rows = writes.event_rows
    body_changes = writes.body_changes
    for aggregate_id in sorted(newest):
        change = newest[aggregate_id]
        facts = change.facts
        if facts is None and isinstance(change.state, EventState):
            facts = facts_of_event(change.state)
        if facts is None:
            raise TypeError(f"event change {aggregate_id} carries no event state")
        previous = stored.get(aggregate_id)
        if previous is not None:
            if change.version <= previous[0]:
                result.ignored += 1  # an older (or the same) version than the one applied
                continue
            deltas.add(previous[1], -1)
        deltas.add(facts, +1)
        rows.append((aggregate_id, change.version, change.at, facts))
        if change.body is not None:
            previous_at = body_changes.get(change.body)
            if previous_at is None or change.at > previous_at:
                body_changes[change.body] = change.at
        result.applied += 1
    deltas.expand(writes.metrics, writes.refs)  # every key so far is an event's
    result.changed_regions |= {k[0] for k in writes.metrics} | {k[1] for k in writes.refs}


_LOAD_EVENTS = "SELECT id, version, facts FROM rm_event_facts WHERE gen = $1 AND id = ANY($2::text[])"


async def _load_event_facts(session: AsyncSession, gen: int, ids: Iterable[str]) -> dict[str, tuple[int, EventFacts]]:
    wanted = list(ids)
    if _is_postgresql(session):
        driver = await asyncpg_connection(session)
        records = await driver.fetch(_LOAD_EVENTS, gen, wanted)
        return {r[0]: (r[1], EventFacts.unpack(r[2])) for r in records}
    t = event_facts.c
    found: dict[str, tuple[int, EventFacts]] = {}
    for chunk in _chunks(wanted):
        for row in await session.execute(select(t.id, t.version, t.facts).where(t.gen == gen, t.id.in_(chunk))):
            found[row[0]] = (int(row[1]), EventFacts.unpack(row[2]))
    return found


def _event_rows(gen: int, rows: list[tuple[str, int, datetime, EventFacts]]) -> list[dict[str, Any]]:
    return [
        {"gen": gen, "id": aggregate_id, "version": version, "facts": f.pack()}
        for aggregate_id, version, _at, f in rows
    ]


async def _write(session: AsyncSession, gen: int, writes: _Writes) -> None:
    insert = _insert(session)
    if _is_postgresql(session):
        await _write_postgresql(session, gen, writes)
    else:
        await _write_portable(session, gen, writes)
    if writes.rewritten_agreements:
        for chunk in _chunks(sorted(set(writes.rewritten_agreements))):
            await session.execute(
                delete(agreement_regions).where(
                    and_(agreement_regions.c.gen == gen, agreement_regions.c.agreement_id.in_(chunk))
                )
            )
            await session.execute(
                delete(agreement_orgs).where(
                    and_(agreement_orgs.c.gen == gen, agreement_orgs.c.agreement_id.in_(chunk))
                )
            )
        if writes.agreement_region_rows:
            await session.execute(insert(agreement_regions), writes.agreement_region_rows)
        unique_org_rows = list({(r["org_id"], r["agreement_id"]): r for r in writes.agreement_org_rows}.values())
        if unique_org_rows:
            await session.execute(insert(agreement_orgs), unique_org_rows)
    body_changes = writes.body_changes
    if body_changes:
        if _is_postgresql(session):
            keys = sorted(body_changes)
            driver = await asyncpg_connection(session)
            await driver.execute(
                _BODIES_UPSERT, gen, [k[0] for k in keys], [k[1] for k in keys], [body_changes[k] for k in keys]
            )
            return
        b = bodies.c
        stmt = insert(bodies)
        latest = func.max(b.last_change, stmt.excluded.last_change)
        stmt = stmt.on_conflict_do_update(index_elements=[b.gen, b.kind, b.code], set_={"last_change": latest})
        await session.execute(
            stmt,
            [
                {"gen": gen, "kind": k, "code": code, "last_change": at}
                for (k, code), at in sorted(body_changes.items())
            ],
        )


async def _write_portable(session: AsyncSession, gen: int, writes: _Writes) -> None:
    """Any dialect (SQLite for local use): bulk upserts through SQLAlchemy Core."""
    insert = _insert(session)
    if writes.state_rows:
        stmt = insert(aggregates)
        stmt = stmt.on_conflict_do_update(
            index_elements=[aggregates.c.gen, aggregates.c.kind, aggregates.c.id],
            set_={
                "version": stmt.excluded.version,
                "facts": stmt.excluded.facts,
                "contribution": stmt.excluded.contribution,
                "changed_at": func.coalesce(stmt.excluded.changed_at, aggregates.c.changed_at),
            },
        )
        for chunk in _chunks(writes.state_rows):
            await session.execute(stmt, list(chunk))
    if writes.event_rows:
        stmt = insert(event_facts)
        columns = [c.name for c in event_facts.c if c.name not in ("gen", "id")]
        stmt = stmt.on_conflict_do_update(
            index_elements=[event_facts.c.gen, event_facts.c.id],
            set_={name: stmt.excluded[name] for name in columns},
        )
        for chunk in _chunks(_event_rows(gen, writes.event_rows)):
            await session.execute(stmt, list(chunk))
    metric_rows = [
        {"gen": gen, "region": r, "year": y, "metric": m, "value": v}
        for (r, y, m), v in sorted(writes.metrics.items())
        if v
    ]
    if metric_rows:
        stmt = insert(metrics)
        stmt = stmt.on_conflict_do_update(
            index_elements=[metrics.c.gen, metrics.c.region, metrics.c.year, metrics.c.metric],
            set_={"value": metrics.c.value + stmt.excluded.value},
        )
        for chunk in _chunks(metric_rows):
            await session.execute(stmt, list(chunk))
    ref_rows = [
        {"gen": gen, "kind": k, "region": r, "year": y, "country": c, "n": n}
        for (k, r, y, c), n in sorted(writes.refs.items())
        if n
    ]
    if ref_rows:
        stmt = insert(country_refs)
        c = country_refs.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.gen, c.kind, c.region, c.year, c.country],
            set_={"n": c.n + stmt.excluded.n},
        )
        for chunk in _chunks(ref_rows):
            await session.execute(stmt, list(chunk))


# PostgreSQL: rows travel as arrays (one bind per column) through `unnest`, each statement one round
# trip whatever the batch size; keys sorted, so concurrent consumers lock rows in the same order.
_LOAD = (
    "SELECT id, version, facts, contribution FROM rm_aggregates WHERE gen = $1 AND kind = $2 AND id = ANY($3::text[])"
)
_STATE_UPSERT = """
INSERT INTO rm_aggregates (gen, kind, id, version, facts, contribution, changed_at)
SELECT $1, k, i, v, f, c, t FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[])
    AS s(k, i, v, f, c, t)
ON CONFLICT (gen, kind, id) DO UPDATE SET version = excluded.version, facts = excluded.facts,
    contribution = excluded.contribution, changed_at = coalesce(excluded.changed_at, rm_aggregates.changed_at)
"""
_EVENTS_INSERT = """
INSERT INTO rm_event_facts (gen, id, version, facts) SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[])
"""
_EVENTS_UPDATE = """
UPDATE rm_event_facts SET version = u.version, facts = u.facts
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[]) AS u(id, version, facts, loaded_version)
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


async def _write_postgresql(session: AsyncSession, gen: int, writes: _Writes) -> None:
    driver = await asyncpg_connection(session)
    if writes.state_rows:
        rows = sorted(writes.state_rows, key=lambda r: (r["kind"], r["id"]))
        await driver.execute(
            _STATE_UPSERT,
            gen,
            [r["kind"] for r in rows],
            [r["id"] for r in rows],
            [r["version"] for r in rows],
            [r["facts"] for r in rows],
            [r["contribution"] for r in rows],
            [r["changed_at"] for r in rows],
        )
    if writes.event_rows:
        await _write_event_facts(driver, gen, writes)
    await _upsert_deltas(driver, _METRICS_UPSERT, gen, writes.metrics)
    await _upsert_deltas(driver, _REFS_UPSERT, gen, writes.refs)


class ConcurrentApply(RuntimeError):
    """Another consumer changed some of this batch's events since they were loaded (two owners of a
    partition for a moment, during a rebalance): the batch is rolled back and retried, and re-reads them."""


async def _write_event_facts(driver: Any, gen: int, writes: _Writes) -> None:
    """Most events arrive once: those not stored yet go in with a plain INSERT, which costs PostgreSQL a
    third less than an upsert (bench/reporting/README.md); the others are updated only from the version
    this batch subtracted. A row inserted or changed by another consumer since it was loaded fails the
    INSERT on the primary key, or the UPDATE's version check: never a contribution subtracted twice."""
    loaded = writes.stored_event_versions
    new = [r for r in writes.event_rows if r[0] not in loaded]
    if new:
        ids, versions, facts = zip(*((r[0], r[1], r[3].pack()) for r in new), strict=True)
        await driver.execute(_EVENTS_INSERT, gen, list(ids), list(versions), list(facts))
    changed = [r for r in writes.event_rows if r[0] in loaded] if loaded else []
    if changed:
        ids, versions, facts = zip(*((r[0], r[1], r[3].pack()) for r in changed), strict=True)
        status = await driver.execute(
            _EVENTS_UPDATE, gen, list(ids), list(versions), list(facts), [loaded[i] for i in ids]
        )
        if int(status.rsplit(" ", 1)[1]) != len(changed):
            raise ConcurrentApply("events of this batch were changed by another consumer meanwhile")


async def _upsert_deltas(driver: Any, statement: str, gen: int, deltas: dict[Any, int]) -> None:
    """The non-zero deltas as one array per key column plus one of values; keys sorted, so every
    consumer locks rows in the same order."""
    keys = sorted(k for k, v in deltas.items() if v)
    if keys:
        await driver.execute(
            statement, gen, *(list(column) for column in zip(*keys, strict=True)), [deltas[k] for k in keys]
        )
