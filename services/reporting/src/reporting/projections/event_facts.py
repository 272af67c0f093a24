"""Events, the high-volume stream, on a fast path: an event's contribution is kept as a few columns
(`EventFacts`) instead of an expanded `Contribution`, and a batch's deltas are summed per home region and
per set of world regions before they are expanded into counters.

This is the one statement of the events' attribution rules (the contract's): `event_figures` applies it
to a single event for tests and tools. Each partner country is stored with the world regions it had when
the event was attributed, so subtracting an old version removes exactly what was added even if the
region catalogue changed in between.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from common.regions import ALL, regions_of_country

from reporting.catalogue import BY_KEY
from reporting.contracts.inbound import EventState
from reporting.projections.attribution import BODY_PREFIX, MetricKey, RefKey, event_home_region

# The counters of an event's vector, in its order (`EventDeltas.add`), and the prefix of its type's.
EVENT_VALUE_METRICS = tuple(
    BY_KEY[key].counter
    for key in (
        "events.count",
        "events.participants",
        "events.foreign_participants",
        "events.papers",
        "events.flagship",
    )
)
TYPE_METRIC = BY_KEY["events.by_type"].counter

# A partner country and the world regions it counted in: (("DE", ("group:eu", "m49:150", ...)), ...)
CountryRegions = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True, eq=False)
class WorldRegions:
    """A set of world regions, interned: partner-country sets that reach the same regions share one."""

    regions: tuple[str, ...]


_WORLDS: dict[tuple[str, ...], WorldRegions] = {}  # bounded: distinct unions of a few dozen regions


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class PartnerCountries:
    """An event's partner countries with the world regions each counted in. Interned — one object per
    distinct value — so it compares and hashes by identity: the hot loop keys dictionaries by it, and
    hashing the nested tuples each time was a tenth of a batch's CPU."""

    pairs: CountryRegions
    text: str  # the stored form, JSON: `{"DE":["group:eu","m49:150"],"TH":["group:asean"]}`
    entries: tuple[str, ...]  # each pair's text (`DE=group:eu,m49:150`): keys of the per-country refs
    world: WorldRegions  # every world region one of them is in (interned too: many sets share one)

    def __bool__(self) -> bool:
        return bool(self.pairs)


_INTERNED: weakref.WeakValueDictionary[str, PartnerCountries] = weakref.WeakValueDictionary()
_ENTRY_PAIRS: dict[str, tuple[str, tuple[str, ...]]] = {}  # bounded: countries × catalogue versions


def _intern(pairs: CountryRegions) -> PartnerCountries:
    entries = tuple(f"{country}={','.join(regions)}" for country, regions in pairs)
    text = json.dumps({country: list(regions) for country, regions in pairs}, separators=(",", ":")) if pairs else ""
    found = _INTERNED.get(text)
    if found is None:
        _ENTRY_PAIRS.update(zip(entries, pairs, strict=True))
        union = tuple(sorted({r for _c, regions in pairs for r in regions}))
        world = _WORLDS.get(union) or _WORLDS.setdefault(union, WorldRegions(union))
        found = _INTERNED[text] = PartnerCountries(pairs, text, entries, world)
    return found


@functools.lru_cache(maxsize=65536)
def country_regions(countries: tuple[str, ...]) -> PartnerCountries:
    return _intern(tuple((c, tuple(sorted(regions_of_country(c)))) for c in countries))


@functools.lru_cache(maxsize=65536)
def decode_countries(text: str) -> PartnerCountries:
    """The stored JSON text back to its interned object (cached: the stream repeats a few sets)."""
    stored: dict[str, list[str]] = json.loads(text) if text else {}
    return _intern(tuple((country, tuple(regions)) for country, regions in stored.items()))


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field
class EventFacts:
    """What an event adds to the counters; `active` False: it adds nothing (cancelled). Never mutated."""

    active: bool
    year: int
    home: str
    countries: PartnerCountries
    body: str
    type: str
    participants: int
    foreign_participants: int
    papers: int
    flagship: bool


def event_facts(state: EventState) -> EventFacts:
    return EventFacts(
        active=state.status != "cancelled",
        year=state.start_date.year,
        home=event_home_region(state),
        countries=country_regions(tuple(state.countries)),
        body=f"{BODY_PREFIX}{state.organizer.kind}:{state.organizer.code}",
        type=state.type,
        participants=state.participants,
        foreign_participants=state.foreign_participants,
        papers=state.papers,
        flagship=state.flagship,
    )


Vector = list[int]


class EventDeltas:
    """A batch's signed event contributions, summed before expansion: most events of a batch share a
    home region and year, and many share a set of partner countries."""

    def __init__(self) -> None:
        self.home: dict[tuple[str, int], Vector] = {}
        self.home_types: dict[tuple[str, int, str], int] = {}
        self.world: dict[tuple[WorldRegions, int], Vector] = {}
        self.world_types: dict[tuple[WorldRegions, int, str], int] = {}
        self.home_refs: dict[tuple[str, int, str], int] = {}
        self.world_refs: dict[tuple[str, int], int] = {}  # (a PartnerCountries entry, year)
        self.bodies: dict[tuple[str, int], int] = {}

    def add(self, facts: EventFacts, sign: int) -> None:
        # The hot loop of the projections (once per event, twice for an update): plain statements.
        if not facts.active:
            return
        year = facts.year
        home = facts.home
        p, fp, pa, fl = facts.participants, facts.foreign_participants, facts.papers, int(facts.flagship)
        if sign < 0:
            p, fp, pa, fl = -p, -fp, -pa, -fl
        key = (home, year)
        vector = self.home.get(key)
        if vector is None:
            self.home[key] = [sign, p, fp, pa, fl]
        else:
            vector[0] += sign
            vector[1] += p
            vector[2] += fp
            vector[3] += pa
            vector[4] += fl
        type_key = (home, year, facts.type)
        self.home_types[type_key] = self.home_types.get(type_key, 0) + sign
        body_key = (facts.body, year)
        self.bodies[body_key] = self.bodies.get(body_key, 0) + sign
        countries = facts.countries
        if not countries.pairs:
            return
        world = countries.world  # interned: dictionaries keyed by it hash by identity
        world_key = (world, year)
        vector = self.world.get(world_key)
        if vector is None:
            self.world[world_key] = [sign, p, fp, pa, fl]
        else:
            vector[0] += sign
            vector[1] += p
            vector[2] += fp
            vector[3] += pa
            vector[4] += fl
        world_type = (world, year, facts.type)
        self.world_types[world_type] = self.world_types.get(world_type, 0) + sign
        for country, _regions in countries.pairs:
            home_ref = (home, year, country)
            self.home_refs[home_ref] = self.home_refs.get(home_ref, 0) + sign
        for entry in countries.entries:
            world_ref = (entry, year)
            self.world_refs[world_ref] = self.world_refs.get(world_ref, 0) + sign

    def expand(self, metrics: dict[MetricKey, int], refs: dict[RefKey, int]) -> None:
        """Add the deltas to `metrics` and `refs` (zero deltas included: their regions were touched)."""
        for (home, year), vector in self.home.items():
            _expand_vector(metrics, (ALL, home), year, vector)
        for (home, year, type_), n in self.home_types.items():
            _bump_years(metrics, (ALL, home), year, TYPE_METRIC + type_, n)
        for (body, year), n in self.bodies.items():
            _bump_years(metrics, (body,), year, "events.count", n)
        for (world, year), vector in self.world.items():
            _expand_vector(metrics, world.regions, year, vector)
        for (world, year, type_), n in self.world_types.items():
            _bump_years(metrics, world.regions, year, TYPE_METRIC + type_, n)
        for (home, year, country), n in self.home_refs.items():
            for y in (year, 0):
                key = ("events", home, y, country)
                refs[key] = refs.get(key, 0) + n
        for (entry, year), n in self.world_refs.items():
            country, regions = _ENTRY_PAIRS[entry]
            for region in (ALL, *regions):
                for y in (year, 0):
                    key = ("events", region, y, country)
                    refs[key] = refs.get(key, 0) + n


def _expand_vector(metrics: dict[MetricKey, int], regions: Iterable[str], year: int, vector: Vector) -> None:
    items = [(m, v) for m, v in zip(EVENT_VALUE_METRICS, vector, strict=True) if v or m == "events.count"]
    for region in regions:
        for y in (year, 0):
            for metric, value in items:
                key = (region, y, metric)
                metrics[key] = metrics.get(key, 0) + value


def _bump_years(metrics: dict[MetricKey, int], regions: Iterable[str], year: int, metric: str, n: int) -> None:
    for region in regions:
        for y in (year, 0):
            key = (region, y, metric)
            metrics[key] = metrics.get(key, 0) + n


def event_figures(state: EventState) -> tuple[dict[MetricKey, int], dict[RefKey, int]]:
    """The counters and country involvements one event adds (its non-zero deltas)."""
    deltas = EventDeltas()
    deltas.add(event_facts(state), +1)
    metrics: dict[MetricKey, int] = {}
    refs: dict[RefKey, int] = {}
    deltas.expand(metrics, refs)
    return {k: v for k, v in metrics.items() if v}, {k: v for k, v in refs.items() if v}
