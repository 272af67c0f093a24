"""The attribution rules of the contract, as pure functions from an aggregate's state to its
contribution: which (region, year, metric) counters it adds to and which countries it involves.

A contribution is stored with the aggregate, so the next change subtracts exactly what was added —
whatever happened to the rules or the region catalogue in between.

Documented choices where the contract is silent:
- home region: a province code that is not one of the 34 provincial-level codes (a sub-provincial city
  such as 440300) counts in its province (first two digits); the Xinjiang Production and Construction
  Corps (660000) in Xinjiang; anything else in `cn:national`.
- an event's home region counts its `countries` too (a province's "countries reached"); `all` counts
  every country; a world region or group only its own countries.
- an agreement signed by a national body (HQ or a society) counts in `cn:national`, as events do.
- a post counts in `all`, in its holder's home region, and in the world regions and groups of
  `organization_country` when given. A post held in Y counts in Y; an open post (no end date) counts in
  every year from its start on (stored once, as `talent.posts_open*` at its start year, and summed when
  read), so no figure drifts as years pass.
- talent persons and organizations are pools: they are counted at year 0 and a year's figures show the
  pool as it stands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from common.regions import ALL, NATIONAL, is_province_code, regions_of_country

from reporting.catalogue import POOL_COUNTERS
from reporting.contracts.inbound import AgreementState, EventState, OrganizationState, PersonState

XPCC = "660000"  # Xinjiang Production and Construction Corps: reports like a province, no GB/T 2260 code
MAX_POST_YEARS = 80
BODY_PREFIX = "body:"
OPEN_POSTS = "talent.posts_open"

Json = dict[str, Any]
MetricKey = tuple[str, int, str]
RefKey = tuple[str, str, int, str]


def is_pool_metric(metric: str) -> bool:
    return metric.startswith(POOL_COUNTERS)


def province_region_of(code: str | None) -> str | None:
    """`cn:<code>` for a provincial code; a city or corps code maps to its province; otherwise None."""
    if not code:
        return None
    if is_province_code(code):
        return f"cn:{code}"
    if code == XPCC:
        return "cn:650000"
    if len(code) == 6 and code.isdigit() and is_province_code(code[:2] + "0000"):
        return f"cn:{code[:2]}0000"
    return None


def home_region_of_body(kind: str, code: str) -> str:
    if kind == "province":
        return province_region_of(code) or NATIONAL
    return NATIONAL


def body_region(kind: str, code: str) -> str:
    return f"{BODY_PREFIX}{kind}:{code}"


@dataclass
class Contribution:
    """Blocks of counters (every region × every year × every value) and country involvements."""

    blocks: list[tuple[list[str], list[int], dict[str, int]]] = field(default_factory=list)
    refs: list[tuple[str, list[int], dict[str, list[str]]]] = field(default_factory=list)

    def to_json(self) -> Json:
        return {"b": [list(b) for b in self.blocks], "r": [list(r) for r in self.refs]}

    @classmethod
    def from_json(cls, raw: Json) -> Contribution:
        return cls(
            blocks=[(list(b[0]), list(b[1]), dict(b[2])) for b in raw.get("b", ())],
            refs=[(str(r[0]), list(r[1]), dict(r[2])) for r in raw.get("r", ())],
        )

    def add_to(self, metrics: dict[MetricKey, int], refs: dict[RefKey, int], sign: int) -> None:
        # The hot loop of the projections: locals and pre-signed values keep it tight.
        get = metrics.get
        for regions, years, values in self.blocks:
            signed = [(metric, sign * value) for metric, value in values.items()]
            for region in regions:
                for year in years:
                    for metric, value in signed:
                        key = (region, year, metric)
                        metrics[key] = get(key, 0) + value
        self.add_refs_to(refs, sign)

    def add_refs_to(self, refs: dict[RefKey, int], sign: int) -> None:
        ref_get = refs.get
        for kind, years, by_region in self.refs:
            for region, countries in by_region.items():
                for year in years:
                    for country in countries:
                        rkey = (kind, region, year, country)
                        refs[rkey] = ref_get(rkey, 0) + sign

    def regions(self) -> set[str]:
        found: set[str] = set()
        for regions, _years, _values in self.blocks:
            found.update(regions)
        for _kind, _years, by_region in self.refs:
            found.update(by_region)
        return found


EMPTY = Contribution()


def _countries_by_region(countries: Iterable[str], also: Iterable[str]) -> dict[str, list[str]]:
    """Each country under `all`, under every region in `also`, and under its own world regions/groups."""
    by_region: dict[str, set[str]] = defaultdict(set)
    for country in countries:
        by_region[ALL].add(country)
        for region in also:
            by_region[region].add(country)
        for region in regions_of_country(country):
            by_region[region].add(country)
    return {r: sorted(cs) for r, cs in sorted(by_region.items())}


def merged_blocks(
    signed: Iterable[tuple[Contribution, int]],
) -> dict[tuple[tuple[str, ...], tuple[int, ...]], dict[str, int]]:
    """The batch's blocks summed by (regions, years), signs applied: fewer expansions for the same deltas."""
    merged: dict[tuple[tuple[str, ...], tuple[int, ...]], dict[str, int]] = {}
    for contribution, sign in signed:
        for regions, years, values in contribution.blocks:
            key = (tuple(regions), tuple(years))
            acc = merged.get(key)
            if acc is None:
                merged[key] = acc = {}
            for metric, value in values.items():
                acc[metric] = acc.get(metric, 0) + sign * value
    return merged


def expand_merged(
    merged: dict[tuple[tuple[str, ...], tuple[int, ...]], dict[str, int]], metrics: dict[MetricKey, int]
) -> None:
    get = metrics.get
    for (regions, years), values in merged.items():
        items = [(m, v) for m, v in values.items() if v]
        if not items:
            continue
        for region in regions:
            for year in years:
                for metric, value in items:
                    key = (region, year, metric)
                    metrics[key] = get(key, 0) + value


def _nonzero(values: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def event_home_region(state: EventState) -> str:
    return province_region_of(state.host_province) or home_region_of_body(state.organizer.kind, state.organizer.code)


def organization_facts(state: OrganizationState | None) -> Json | None:
    if state is None or state.deleted or state.status in ("deleted", "removed", "merged"):
        return None
    return {"country": state.country}


def organization_contribution(facts: Json | None) -> Contribution:
    if facts is None:
        return EMPTY
    country = facts.get("country")
    regions = sorted({ALL} | (regions_of_country(country) if country else set()))
    contribution = Contribution(blocks=[(regions, [0], {"partners.organizations": 1})])
    if country:
        contribution.refs.append(("partners", [0], _countries_by_region([country], [])))
    return contribution


def agreement_facts(state: AgreementState) -> Json:
    signer = state.signer
    return {
        "signed_on": state.signed_on.isoformat(),
        "expires_on": state.expires_on.isoformat() if state.expires_on else None,
        "status": state.status,
        "partner_org_ids": sorted(set(state.partner_org_ids)),
        "flagship": state.flagship,
        "signer": [signer.kind, signer.code] if signer else None,
    }


@dataclass(frozen=True)
class AgreementRows:
    regions: list[str]
    signed_year: int
    status: str
    expires_on: date | None


def agreement_home_region(facts: Json) -> str | None:
    signer = facts.get("signer")
    return home_region_of_body(signer[0], signer[1]) if signer else None


def agreement_contribution(facts: Json, country_of: Callable[[str], str | None]) -> Contribution:
    """`country_of(org_id)`: the organization's country as last known (None: international or unknown)."""
    signed_year = date.fromisoformat(facts["signed_on"]).year
    years = [signed_year, 0]
    countries = sorted({c for c in (country_of(o) for o in facts["partner_org_ids"]) if c})
    home = agreement_home_region(facts)
    world: set[str] = set()
    for country in countries:
        world |= regions_of_country(country)
    regions = sorted({ALL} | world | ({home} if home else set()))
    values = _nonzero({"partners.agreements_signed": 1, "partners.flagship_agreements": int(facts["flagship"])})
    contribution = Contribution(blocks=[(regions, years, values)])
    signer = facts.get("signer")
    if signer:
        contribution.blocks.append(([body_region(signer[0], signer[1])], years, {"partners.agreements_signed": 1}))
    if countries:
        contribution.refs.append(("partners", years, _countries_by_region(countries, [home] if home else [])))
    return contribution


def agreement_rows(facts: Json, contribution: Contribution) -> AgreementRows:
    regions = sorted(r for r in contribution.blocks[0][0]) if contribution.blocks else []
    expires = facts.get("expires_on")
    return AgreementRows(
        regions=regions,
        signed_year=date.fromisoformat(facts["signed_on"]).year,
        status=str(facts.get("status") or "active"),
        expires_on=date.fromisoformat(expires) if expires else None,
    )


def person_home_region(state: PersonState) -> str:
    return province_region_of(state.province) or NATIONAL


def person_contribution(state: PersonState | None) -> Contribution:
    if state is None or state.deleted:
        return EMPTY
    home = person_home_region(state)
    person_regions = {ALL, home}
    if state.country and state.country != "CN":
        person_regions |= regions_of_country(state.country)
    values = {"talent.persons": 1, "talent.reserve": int(state.reserve)}
    for group in sorted(set(state.groups)):
        values[f"talent.by_group.{group}"] = 1
    contribution = Contribution(blocks=[(sorted(person_regions), [0], _nonzero(values))])
    if state.society:
        contribution.blocks.append(([body_region("society", state.society)], [0], {"talent.persons": 1}))
    per_block: dict[tuple[tuple[str, ...], tuple[int, ...]], dict[str, int]] = defaultdict(dict)
    for post in state.posts:
        regions = {ALL, home}
        if post.organization_country:
            regions |= regions_of_country(post.organization_country)
        key_regions = tuple(sorted(regions))
        role = post.role
        _bump(per_block[(key_regions, (0,))], {"talent.posts": 1, f"talent.posts_by_role.{role}": 1})
        if post.end_date is not None:
            first = post.start_date.year if post.start_date else post.end_date.year
            last = max(first, post.end_date.year)
            years = tuple(range(first, min(last, first + MAX_POST_YEARS) + 1))
            _bump(per_block[(key_regions, years)], {"talent.posts": 1, f"talent.posts_by_role.{role}": 1})
        else:
            start = (post.start_date.year,) if post.start_date else (1,)
            _bump(per_block[(key_regions, start)], {OPEN_POSTS: 1, f"{OPEN_POSTS}_by_role.{role}": 1})
    for (regions_key, years_key), values_ in sorted(per_block.items()):
        contribution.blocks.append((list(regions_key), list(years_key), values_))
    return contribution


def _bump(target: dict[str, int], values: Mapping[str, int]) -> None:
    for key, value in values.items():
        target[key] = target.get(key, 0) + value
