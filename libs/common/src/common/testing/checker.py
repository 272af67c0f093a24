"""A checker for the whole system under faults, in the spirit of Jepsen's Kafka checker.

It is given three independent views of one history and says where they disagree:

* the writes the services *acknowledged* (a 2xx answer: the aggregate's id, version and state),
* the messages on the topics, read from offset 0,
* reporting's figures for every region (`GET /v1/metrics`).

From them it reports, each of which must be empty:

* **lost**: an acknowledged write whose version never reached its topic, or which the service's own
  list API no longer shows (the service forgot a change it acknowledged);
* **counted_twice** / **not_counted**: a region whose figure is above / below the figure recomputed here
  from the aggregates' final states (a message applied twice, or one never applied);
* **order_violations**: a key whose versions go backwards on the topic (offset order in its partition),
  or a key found on two partitions (its order would then be undefined).

Copies of a message on a topic (at-least-once delivery allows them) are counted in `topic_copies`, not
reported as anomalies: the projections must absorb them, which the figures check.

The figures are recomputed with the contract's attribution rules written here anew (see
shared/contract/README.md, *Attribution*), not with reporting's code, so a wrong rule there shows up as a
disagreement. Only the region catalogue (which countries are in which world region or group) is shared.
Each kind of aggregate has its own `Attribution`; a new kind (talent's persons) joins by adding one to
`ATTRIBUTIONS` and its writes to the history.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from common.regions import ALL, NATIONAL, is_province_code, regions_of_country

Json = dict[str, Any]
XPCC = "660000"  # the Xinjiang Production and Construction Corps counts in Xinjiang (contract, *Common shapes*)
EXPIRING_DAYS = 90
EVENT_TYPES = (
    "conference",
    "forum",
    "dialogue",
    "delegation_in",
    "delegation_out",
    "youth_camp",
    "exhibition",
    "training",
    "online",
    "other",
)


@dataclass(frozen=True)
class Write:
    """A write a service acknowledged: `kind` is the aggregate's kind (`event`, `organization`, …)."""

    kind: str
    key: str
    version: int


@dataclass(frozen=True)
class Message:
    """A message read back from a topic."""

    key: str
    version: int
    type: str
    partition: int
    offset: int
    data: Json = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Mismatch:
    region: str
    metric: str
    expected: int
    actual: int


@dataclass
class Report:
    lost: list[str] = field(default_factory=list)
    counted_twice: list[Mismatch] = field(default_factory=list)
    not_counted: list[Mismatch] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    topic_copies: int = 0
    regions_checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.counted_twice or self.not_counted or self.order_violations)

    def __str__(self) -> str:
        lines = [
            f"lost: {len(self.lost)}, counted twice: {len(self.counted_twice)}, not counted: "
            f"{len(self.not_counted)}, order violations: {len(self.order_violations)} "
            f"({self.regions_checked} regions; {self.topic_copies} copies on the topics)"
        ]
        lines += [f"  lost {x}" for x in self.lost[:10]]
        lines += [f"  over {m}" for m in self.counted_twice[:10]]
        lines += [f"  under {m}" for m in self.not_counted[:10]]
        lines += [f"  order {x}" for x in self.order_violations[:10]]
        return "\n".join(lines)


# -- recomputing the figures -------------------------------------------------------------------------


class Tally:
    """Figures being recomputed: region → metric → value, and region → section → countries."""

    def __init__(self) -> None:
        self.values: dict[str, Counter[str]] = defaultdict(Counter)
        self.countries: dict[tuple[str, str], set[str]] = defaultdict(set)

    def add(self, regions: Iterable[str], metrics: Mapping[str, int]) -> None:
        for region in set(regions):
            self.values[region].update(metrics)

    def involve(self, section: str, regions: Iterable[str], countries: Iterable[str]) -> None:
        for region in set(regions):
            self.countries[(region, section)].update(countries)

    def figure(self, region: str, metric: str) -> int:
        section, _, name = metric.partition(".")
        if name == "countries":
            return len(self.countries.get((region, section), ()))
        return self.values.get(region, Counter())[metric]


def province_region(code: str | None) -> str | None:
    """The province region of a GB/T 2260 code: a provincial code itself, a city code its province's
    (first two digits), the Corps Xinjiang's; None for anything else."""
    if not code:
        return None
    if code == XPCC:
        return "cn:650000"
    province = code[:2] + "0000"
    if len(code) == 6 and code.isdigit() and is_province_code(province):
        return f"cn:{province}"
    return None


def body_home(body: Mapping[str, Any] | None) -> str | None:
    """A province body counts in its province region; a national body (HQ, a society) in cn:national."""
    if not body:
        return None
    if body.get("kind") == "province":
        return province_region(str(body.get("code") or "")) or NATIONAL
    return NATIONAL


def world_of(countries: Iterable[str]) -> dict[str, set[str]]:
    """Each world region or group → the given countries it contains."""
    found: dict[str, set[str]] = defaultdict(set)
    for country in countries:
        for region in regions_of_country(country):
            found[region].add(country)
    return found


@dataclass(frozen=True)
class Context:
    today: date
    states: Mapping[str, Mapping[str, Json]]  # kind → key → final state (for lookups across kinds)


def attribute_event(state: Json, tally: Tally, ctx: Context) -> None:
    """Once in `all`, once in its home region (host province, else the organizer's), once in every world
    region or group holding one of its countries; a cancelled event nowhere; year = start year."""
    if state.get("status") == "cancelled":
        return
    home = province_region(state.get("host_province")) or body_home(state.get("organizer")) or NATIONAL
    countries = list(state.get("countries") or [])
    world = world_of(countries)
    metrics = {
        "events.count": 1,
        "events.participants": int(state.get("participants") or 0),
        "events.foreign_participants": int(state.get("foreign_participants") or 0),
        "events.papers": int(state.get("papers") or 0),
        f"events.by_type.{state['type']}": 1,
    }
    tally.add([ALL, home, *world], metrics)
    tally.involve("events", [ALL, home], countries)
    for region, inside in world.items():
        tally.involve("events", [region], inside)


def attribute_organization(state: Json, tally: Tally, ctx: Context) -> None:
    """In `all` and the world regions of its country; a pool (every year); merged ones nowhere."""
    if state.get("status") == "merged":
        return
    country = state.get("country")
    world = world_of([country]) if country else {}
    tally.add([ALL, *world], {"partners.organizations": 1})
    if country:
        tally.involve("partners", [ALL, *world], [country])


def attribute_agreement(state: Json, tally: Tally, ctx: Context) -> None:
    """In `all`, every world region of its partners' countries and the signing body's home region;
    signed in the year of `signed_on`; active/expiring judged against today."""
    organizations = ctx.states.get("organization", {})
    countries = sorted(
        {c for o in state.get("partner_org_ids") or [] if (c := organizations.get(str(o), {}).get("country"))}
    )
    world = world_of(countries)
    home = body_home(state.get("signed_by"))
    regions = [ALL, *world, *([home] if home else [])]
    expires = date.fromisoformat(state["expires_on"]) if state.get("expires_on") else None
    active = state.get("status") == "active" and (expires is None or expires >= ctx.today)
    expiring = active and expires is not None and expires <= ctx.today + timedelta(days=EXPIRING_DAYS)
    metrics = {
        "partners.agreements_signed": 1,
        "partners.agreements_active": int(active),
        "partners.agreements_expiring_90d": int(expiring),
    }
    tally.add(regions, metrics)
    tally.involve("partners", [ALL, *([home] if home else [])], countries)
    for region, inside in world.items():
        tally.involve("partners", [region], inside)


Attribution = Callable[[Json, Tally, Context], None]
ATTRIBUTIONS: dict[str, Attribution] = {
    "event": attribute_event,
    "organization": attribute_organization,
    "agreement": attribute_agreement,
}
METRICS: dict[str, tuple[str, ...]] = {
    "event": (
        "events.count",
        "events.participants",
        "events.foreign_participants",
        "events.papers",
        "events.countries",
        *(f"events.by_type.{t}" for t in EVENT_TYPES),
    ),
    "organization": ("partners.organizations", "partners.countries"),
    "agreement": (
        "partners.agreements_signed",
        "partners.agreements_active",
        "partners.agreements_expiring_90d",
        "partners.countries",
    ),
}


def recompute(states: Mapping[str, Mapping[str, Json]], *, today: date) -> Tally:
    """The figures of every year together (`?year` omitted) that the contract's rules give for these
    final states (kind → key → state), with `today` in the association's time zone."""
    ctx = Context(today=today, states=states)
    tally = Tally()
    for kind, by_key in states.items():
        for state in by_key.values():
            ATTRIBUTIONS[kind](state, tally, ctx)
    return tally


def figure_of(region_object: Mapping[str, Any], metric: str) -> int:
    """`events.by_type.forum` → region_object["events"]["by_type"]["forum"] (0 when absent)."""
    value: Any = region_object
    for part in metric.split("."):
        value = value.get(part, 0) if isinstance(value, Mapping) else 0
    return int(value or 0)


# -- the check ---------------------------------------------------------------------------------------


def check(
    *,
    acknowledged: Iterable[Write],
    messages: Mapping[str, Iterable[Message]],
    states: Mapping[str, Mapping[str, Json]],
    figures: Mapping[str, Mapping[str, Any]],
    regions: Iterable[str],
    today: date,
) -> Report:
    """`messages`: kind → what its topic holds for that kind; `states`: kind → key → final state from
    the owning service's list API; `figures`: region code → reporting's region object of every year
    (`GET /v1/metrics`); `regions`: every code of `GET /v1/regions` (a region left out of `figures`
    counts as all zero); `today`: the association's today, as reporting judges active agreements."""
    report = Report()
    acknowledged = list(acknowledged)
    on_topic: dict[tuple[str, str], set[int]] = defaultdict(set)
    for kind, found in messages.items():
        found = sorted(found, key=lambda m: (m.partition, m.offset))
        seen: Counter[tuple[str, int, str]] = Counter()
        latest: dict[str, int] = {}
        partition_of: dict[str, int] = {}
        for message in found:
            on_topic[(kind, message.key)].add(message.version)
            seen[(message.key, message.version, message.type)] += 1
            if partition_of.setdefault(message.key, message.partition) != message.partition:
                report.order_violations.append(
                    f"{kind} {message.key} on partitions {partition_of[message.key]} and {message.partition}"
                )
            if message.version < latest.get(message.key, 0):
                report.order_violations.append(
                    f"{kind} {message.key} version {message.version} after {latest[message.key]} "
                    f"(partition {message.partition}, offset {message.offset})"
                )
            latest[message.key] = max(latest.get(message.key, 0), message.version)
        report.topic_copies += sum(n - 1 for n in seen.values())
    for write in acknowledged:
        if write.version not in on_topic.get((write.kind, write.key), set()):
            report.lost.append(f"{write.kind} {write.key} version {write.version}: not on the topic")
        state = states.get(write.kind, {}).get(write.key)
        if state is None or int(state.get("version", 0)) < write.version:
            report.lost.append(f"{write.kind} {write.key} version {write.version}: not in the service's list")
    tally = recompute(states, today=today)
    metrics = sorted({m for kind in (*states, *(w.kind for w in acknowledged)) for m in METRICS.get(kind, ())})
    for region in regions:
        report.regions_checked += 1
        region_object = figures.get(region, {})
        for metric in metrics:
            expected, actual = tally.figure(region, metric), figure_of(region_object, metric)
            if actual > expected:
                report.counted_twice.append(Mismatch(region, metric, expected, actual))
            elif actual < expected:
                report.not_counted.append(Mismatch(region, metric, expected, actual))
    return report
