"""An in-memory `ProjectionWriter`: the projections' rules tested in milliseconds, without a database.
It keeps exactly what the real writers keep (tests/integration hold those to the same figures)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from reporting.projections.event_facts import EventFacts
from reporting.projections.ports import ConcurrentApply, StoredAggregate, Writes


class InMemoryProjectionWriter:
    def __init__(self, live_generation: int = 1) -> None:
        self.generation = live_generation
        self.aggregates: dict[tuple[int, str, str], StoredAggregate] = {}
        self.events: dict[tuple[int, str], tuple[int, EventFacts]] = {}
        self.metrics: dict[tuple[int, str, int, str], int] = {}
        self.refs: dict[tuple[int, str, str, int, str], int] = {}
        self.agreement_regions: dict[tuple[int, str], list[tuple[str, int, str, date | None]]] = {}
        self.agreement_orgs: set[tuple[int, str, str]] = set()
        self.bodies: dict[tuple[int, str, str], object] = {}
        self.partner_locks = 0

    async def live_generation(self) -> int:
        return self.generation

    async def lock_partner_links(self, gen: int) -> None:
        self.partner_locks += 1

    async def load_aggregates(self, gen: int, kind: str, ids: Iterable[str]) -> dict[str, StoredAggregate]:
        return {i: self.aggregates[(gen, kind, i)] for i in ids if (gen, kind, i) in self.aggregates}

    async def load_events(self, gen: int, ids: Iterable[str]) -> dict[str, tuple[int, EventFacts]]:
        return {i: self.events[(gen, i)] for i in ids if (gen, i) in self.events}

    async def agreements_naming(self, gen: int, org_ids: Iterable[str]) -> set[str]:
        wanted = set(org_ids)
        return {a for g, o, a in self.agreement_orgs if g == gen and o in wanted}

    async def write(self, gen: int, writes: Writes) -> None:
        for event in writes.events:  # the real writers' guard against a concurrent consumer
            loaded = writes.loaded_event_versions.get(event.id)
            stored = self.events.get((gen, event.id))
            if (stored[0] if stored else None) != loaded:
                raise ConcurrentApply("events of this batch were changed meanwhile")
        for row in writes.aggregates:
            key = (gen, row.kind, row.id)
            self.aggregates[key] = StoredAggregate(row.version, row.facts, row.contribution)
        for event in writes.events:
            self.events[(gen, event.id)] = (event.version, event.facts)
        for (region, year, metric), value in writes.metrics.items():
            key = (gen, region, year, metric)
            self.metrics[key] = self.metrics.get(key, 0) + value
        for (kind, region, year, country), n in writes.refs.items():
            rkey = (gen, kind, region, year, country)
            self.refs[rkey] = self.refs.get(rkey, 0) + n
        for agreement_id in writes.rewritten_agreements:
            self.agreement_regions.pop((gen, agreement_id), None)
            self.agreement_orgs = {t for t in self.agreement_orgs if not (t[0] == gen and t[2] == agreement_id)}
        for r in writes.agreement_regions:
            rows = self.agreement_regions.setdefault((gen, r.agreement_id), [])
            rows.append((r.region, r.signed_year, r.status, r.expires_on))
        self.agreement_orgs |= {(gen, o, a) for o, a in writes.agreement_orgs}
        for (kind, code), at in writes.body_changes.items():
            self.bodies[(gen, kind, code)] = at

    def figures(self, gen: int = 1) -> dict[tuple[str, int, str], int]:
        """The non-zero counters of a generation."""
        return {(r, y, m): v for (g, r, y, m), v in self.metrics.items() if g == gen and v}

    def countries(self, kind: str, region: str, year: int, gen: int = 1) -> set[str]:
        return {c for (g, k, r, y, c), n in self.refs.items() if (g, k, r, y) == (gen, kind, region, year) and n > 0}
