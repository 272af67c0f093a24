"""A checker for the whole system under faults, in the spirit of Jepsen's Kafka checker.

It is given three independent views of one history and says where they disagree:

* the writes the services *acknowledged* (a 2xx answer: the aggregate's id, version and state),
* the messages on the topics, read from offset 0,
* reporting's figures for every region (`GET /v1/metrics`), of all years together and of every year
  present in the history (`GET /v1/metrics?year=`, see `years_of`).

From them it reports, each of which must be empty:

* **lost**: an acknowledged write whose version never reached its topic, or which the service's own
  list API no longer shows (the service forgot a change it acknowledged);
* **counted_twice** / **not_counted**: a region whose figure (of all years, or of one year) is above /
  below the figure recomputed here from the aggregates' final states (a message applied twice, or one
  never applied);
* **order_violations**: a key whose versions go backwards on the topic (offset order in its partition),
  or a key found on two partitions (its order would then be undefined).

Copies of a message on a topic (at-least-once delivery allows them) are counted in `topic_copies`, not
reported as anomalies: the projections must absorb them, which the figures check.

The figures are recomputed with the contract's attribution rules written here anew (see
shared/contract/README.md, *Attribution*), not with reporting's code, so a wrong rule there shows up as a
disagreement. Only the region catalogue (which countries are in which world region or group) is shared.
Each kind of aggregate (event, organization, agreement, person) has its own `Attribution`, which says
both where the aggregate counts and in which years; a new kind joins by adding one to `ATTRIBUTIONS` and
`METRICS` and its writes to the history.

Where the contract leaves a choice to reporting, the checker follows reporting's documented one
(reporting/projections/attribution.py, *Documented choices*): a post counts in `all`, in its holder's home
region and in the world regions of `organization_country`; people and organizations are pools, the same
in every year; a closed post counts in every year from its start to its end, an open one in every year
from its start on; a year's `countries` are those of that year's events and agreements (organizations,
a pool, add theirs to the all-years figure only); a year's active and expiring agreements are those in
force today that were signed in that year or before.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common.regions import ALL, NATIONAL, is_province_code, regions_of_country

Json = dict[str, Any]
XPCC = "660000"  # the Xinjiang Production and Construction Corps counts in Xinjiang (contract, *Common shapes*)
EXPIRING_DAYS = 90
MAX_POST_YEARS = 80  # a post counts in at most this many years after its start (reporting's bound)
# The producers' vocabularies, read from the files they publish beside their AsyncAPI: common imports no
# service, and the checker only runs from this repository's tests (tests/contract/test_checker_catalogue.py
# holds its metrics equal to reporting's catalogue).
SERVICES_DIR = Path(__file__).resolve().parents[5] / "services"


def published(service: str, name: str) -> tuple[str, ...]:
    """The keys of one list of a producer's `contracts/vocabulary.json`, in its order."""
    path = SERVICES_DIR / service / "src" / service / "contracts" / "vocabulary.json"
    return tuple(json.loads(path.read_text(encoding="utf-8"))[name])


GROUPS = published("talent", "groups")
ROLES = published("talent", "roles")
EVENT_TYPES = published("events", "event_types")


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
    year: int | None = None  # None: the figure of all years together


@dataclass
class Report:
    lost: list[str] = field(default_factory=list)
    counted_twice: list[Mismatch] = field(default_factory=list)
    not_counted: list[Mismatch] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    topic_copies: int = 0
    regions_checked: int = 0
    years_checked: int = 0  # years compared besides the all-years figures

    @property
    def ok(self) -> bool:
        return not (self.lost or self.counted_twice or self.not_counted or self.order_violations)

    def __str__(self) -> str:
        lines = [
            f"lost: {len(self.lost)}, counted twice: {len(self.counted_twice)}, not counted: "
            f"{len(self.not_counted)}, order violations: {len(self.order_violations)} "
            f"({self.regions_checked} regions in {self.years_checked} years and all years; "
            f"{self.topic_copies} copies on the topics)"
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
    year: int | None = None  # the year whose figures are recomputed; None: all years together

    def counts_in(self, year: int) -> bool:
        """Whether something of `year` (an event's start, an agreement's signature) counts in these figures."""
        return self.year is None or self.year == year


def year_of(value: Any) -> int | None:
    return date.fromisoformat(str(value)).year if value else None


def attribute_event(state: Json, tally: Tally, ctx: Context) -> None:
    """Once in `all`, once in its home region (host province, else the organizer's), once in every world
    region or group holding one of its countries; a cancelled event nowhere; year = start year."""
    if state.get("status") == "cancelled" or not ctx.counts_in(date.fromisoformat(state["start_date"]).year):
        return
    home = province_region(state.get("host_province")) or body_home(state.get("organizer")) or NATIONAL
    countries = list(state.get("countries") or [])
    world = world_of(countries)
    metrics = {
        "events.count": 1,
        "events.participants": int(state.get("participants") or 0),
        "events.foreign_participants": int(state.get("foreign_participants") or 0),
        "events.papers": int(state.get("papers") or 0),
        "events.flagship": int(bool(state.get("flagship"))),
        f"events.by_type.{state['type']}": 1,
    }
    tally.add([ALL, home, *world], metrics)
    tally.involve("events", [ALL, home], countries)
    for region, inside in world.items():
        tally.involve("events", [region], inside)


def attribute_organization(state: Json, tally: Tally, ctx: Context) -> None:
    """In `all` and the world regions of its country; a pool (every year); merged ones nowhere. Its
    country is among the partner countries of all years only."""
    if state.get("status") == "merged":
        return
    country = state.get("country")
    world = world_of([country]) if country else {}
    tally.add([ALL, *world], {"partners.organizations": 1})
    if country and ctx.year is None:
        tally.involve("partners", [ALL, *world], [country])


def attribute_agreement(state: Json, tally: Tally, ctx: Context) -> None:
    """In `all`, every world region of its partners' countries and the signing body's home region;
    signed in the year of `signed_on`; active/expiring judged against today, in that year and every later
    one; its countries in the year it was signed."""
    signed_year = date.fromisoformat(state["signed_on"]).year
    if ctx.year is not None and signed_year > ctx.year:
        return
    signed_now = ctx.counts_in(signed_year)
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
        "partners.agreements_signed": int(signed_now),
        "partners.agreements_active": int(active),
        "partners.agreements_expiring_90d": int(expiring),
        "partners.flagship_agreements": int(signed_now and bool(state.get("flagship"))),
    }
    tally.add(regions, metrics)
    if not signed_now:
        return
    tally.involve("partners", [ALL, *([home] if home else [])], countries)
    for region, inside in world.items():
        tally.involve("partners", [region], inside)


def post_counts_in(post: Mapping[str, Any], year: int | None) -> bool:
    """Once in all years together; in a year when held in it: a closed post from its start year to its
    end year, an open one (no `end_date`) from its start year on."""
    if year is None:
        return True
    start, end = year_of(post.get("start_date")), year_of(post.get("end_date"))
    if end is None:
        return start is None or start <= year
    first = start if start is not None else end
    return first <= year <= min(max(first, end), first + MAX_POST_YEARS)


def attribute_person(state: Json, tally: Tally, ctx: Context) -> None:
    """A pool (the same in every year): in `all`, in the home region of `province` (else `cn:national`)
    and in the world regions of `country` when not CN; an erased person nowhere. Each post in `all`, the
    holder's home region and the world regions of `organization_country`, in the years it was held."""
    if state.get("deleted"):
        return
    home = province_region(state.get("province")) or NATIONAL
    country = state.get("country")
    world = world_of([country]) if country and country != "CN" else {}
    metrics = {"talent.persons": 1, "talent.reserve": int(bool(state.get("reserve")))}
    metrics.update({f"talent.by_group.{group}": 1 for group in set(state.get("groups") or [])})
    tally.add([ALL, home, *world], metrics)
    for post in state.get("posts") or []:
        if not post_counts_in(post, ctx.year):
            continue
        seat = post.get("organization_country")
        regions = [ALL, home, *(world_of([seat]) if seat else {})]
        tally.add(regions, {"talent.posts": 1, f"talent.posts_by_role.{post['role']}": 1})


Attribution = Callable[[Json, Tally, Context], None]
ATTRIBUTIONS: dict[str, Attribution] = {
    "event": attribute_event,
    "organization": attribute_organization,
    "agreement": attribute_agreement,
    "person": attribute_person,
}
METRICS: dict[str, tuple[str, ...]] = {
    "event": (
        "events.count",
        "events.participants",
        "events.foreign_participants",
        "events.papers",
        "events.countries",
        "events.flagship",
        *(f"events.by_type.{t}" for t in EVENT_TYPES),
    ),
    "organization": ("partners.organizations", "partners.countries"),
    "agreement": (
        "partners.agreements_signed",
        "partners.agreements_active",
        "partners.agreements_expiring_90d",
        "partners.countries",
        "partners.flagship_agreements",
    ),
    "person": (
        "talent.persons",
        "talent.reserve",
        "talent.posts",
        *(f"talent.by_group.{g}" for g in GROUPS),
        *(f"talent.posts_by_role.{r}" for r in ROLES),
    ),
}


def recompute(states: Mapping[str, Mapping[str, Json]], *, today: date, year: int | None = None) -> Tally:
    """The figures of `year` (None: every year together, `?year` omitted) that the contract's rules give
    for these final states (kind → key → state), with `today` in the association's time zone."""
    ctx = Context(today=today, states=states, year=year)
    tally = Tally()
    for kind, by_key in states.items():
        for state in by_key.values():
            ATTRIBUTIONS[kind](state, tally, ctx)
    return tally


def years_of(states: Mapping[str, Mapping[str, Json]], *, today: date) -> list[int]:
    """The years present in a history, whose figures are compared one by one: this year, every year an
    event starts or an agreement is signed in, and every year a post is held in (an open one up to this
    year)."""
    years = {today.year}
    for state in states.get("event", {}).values():
        years.add(date.fromisoformat(state["start_date"]).year)
    for state in states.get("agreement", {}).values():
        years.add(date.fromisoformat(state["signed_on"]).year)
    for state in states.get("person", {}).values():
        for post in state.get("posts") or []:
            start, end = year_of(post.get("start_date")), year_of(post.get("end_date"))
            first = start if start is not None else end if end is not None else today.year
            last = max(first, end if end is not None else today.year)
            years.update(range(first, min(last, first + MAX_POST_YEARS) + 1))
    return sorted(years)


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
    figures_by_year: Mapping[int, Mapping[str, Mapping[str, Any]]],
    regions: Iterable[str],
    today: date,
) -> Report:
    """`messages`: kind → what its topic holds for that kind; `states`: kind → key → final state from
    the owning service's list API (an erased person as its `deleted: true` state); `figures`: region code
    → reporting's region object of every year (`GET /v1/metrics`); `figures_by_year`: year → the same for
    that year (`GET /v1/metrics?year=`), for every year of `years_of(states)` (a year left out counts as
    all zero); `regions`: every code of `GET /v1/regions` (a region left out counts as all zero);
    `today`: the association's today, as reporting judges active agreements."""
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
    metrics = sorted({m for kind in (*states, *(w.kind for w in acknowledged)) for m in METRICS.get(kind, ())})
    regions = list(regions)
    years: list[int | None] = [None, *years_of(states, today=today)]
    for year in years:
        tally = recompute(states, today=today, year=year)
        by_region = figures if year is None else figures_by_year.get(year, {})
        for region in regions:
            region_object = by_region.get(region, {})
            for metric in metrics:
                expected, actual = tally.figure(region, metric), figure_of(region_object, metric)
                if actual > expected:
                    report.counted_twice.append(Mismatch(region, metric, expected, actual, year))
                elif actual < expected:
                    report.not_counted.append(Mismatch(region, metric, expected, actual, year))
    report.regions_checked = len(regions)
    report.years_checked = len(years) - 1
    return report
