"""The metrics catalogue: every figure reporting publishes, declared once.

Each `Metric` says where it comes from, how it is computed, its labels and its unit. The projections'
counter names, the read queries' per-region object, the response schema (api/schemas.py), the annual
report's columns (api/reports.py) and the dashboard's labels (`/dashboard/labels.json`) all read this
table, so adding a metric is one line here plus the rule that counts it.

The breakdowns' keys — event types, talent groups, post roles — are the producers' vocabularies
(contracts/vocabularies/*.json, checked copies of the files each producer publishes beside its AsyncAPI;
tests/contract/test_vocabularies.py fails when they differ).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

VOCABULARIES = Path(__file__).resolve().parent / "contracts" / "vocabularies"
SECTIONS = ("partners", "events", "talent")
DASHBOARD_SECTIONS = ("events", "partners", "talent")

# counter: rm_metrics rows named `counter` (with a vocabulary: one per key, named `<counter><key>`) ·
# countries: distinct countries in rm_country_refs of kind `counter` · active / expiring: agreements in
# force today (or ending within 90 days), from rm_agreement_regions.
Computation = Literal["counter", "countries", "active", "expiring"]


@dataclass(frozen=True)
class Metric:
    key: str  # `<section>.<name>`: its place in the per-region object and the annual report's column key
    source: Literal["partners", "events", "talent"]  # the producer (topic) it is counted from
    computed: Computation
    zh: str
    en: str
    unit: str
    counter: str = ""  # the rm_metrics name (with a vocabulary: its prefix), or the rm_country_refs kind
    vocabulary: str = ""  # a breakdown: the vocabulary its keys come from
    pool: bool = False  # what stands now (people, organizations): the rows at year 0, whatever the year
    # On the dashboard: "table", a column of the region table and a line of the region detail; "card", that
    # and a headline card of the totals. A breakdown (with a vocabulary) is always a section of the detail.
    dashboard: Literal["", "table", "card"] = ""

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


METRICS: tuple[Metric, ...] = (
    Metric("partners.organizations", "partners", "counter", "合作组织", "Partner organizations", "organizations",
           "partners.organizations", pool=True, dashboard="card"),
    Metric("partners.agreements_active", "partners", "active", "有效协议", "Agreements active", "agreements",
           dashboard="card"),
    Metric("partners.agreements_signed", "partners", "counter", "签署协议", "Agreements signed", "agreements",
           "partners.agreements_signed", dashboard="table"),
    Metric("partners.agreements_expiring_90d", "partners", "expiring", "90天内到期协议",
           "Agreements expiring in 90 days", "agreements", dashboard="table"),
    Metric("partners.countries", "partners", "countries", "合作国家", "Partner countries", "countries", "partners",
           dashboard="table"),
    Metric("partners.flagship_agreements", "partners", "counter", "品牌协议", "Flagship agreements", "agreements",
           "partners.flagship_agreements"),
    Metric("events.count", "events", "counter", "活动", "Events", "events", "events.count", dashboard="card"),
    Metric("events.participants", "events", "counter", "参加人数", "Participants", "people", "events.participants",
           dashboard="card"),
    Metric("events.foreign_participants", "events", "counter", "外方人数", "Foreign participants", "people",
           "events.foreign_participants", dashboard="card"),
    Metric("events.papers", "events", "counter", "论文", "Papers", "papers", "events.papers", dashboard="table"),
    Metric("events.countries", "events", "countries", "涉及国家", "Countries reached", "countries", "events",
           dashboard="card"),
    Metric("events.flagship", "events", "counter", "品牌活动", "Flagship events", "events", "events.flagship"),
    Metric("events.by_type", "events", "counter", "活动", "Events", "events", "events.by_type.", "event_types"),
    Metric("talent.persons", "talent", "counter", "人才", "People", "people", "talent.persons", pool=True,
           dashboard="card"),
    Metric("talent.by_group", "talent", "counter", "人才", "People", "people", "talent.by_group.", "groups", pool=True),
    Metric("talent.reserve", "talent", "counter", "后备人才", "Reserve pool", "people", "talent.reserve", pool=True,
           dashboard="table"),
    Metric("talent.posts", "talent", "counter", "国际组织任职", "Posts in international organizations", "posts",
           "talent.posts", dashboard="card"),
    Metric("talent.posts_by_role", "talent", "counter", "任职", "Posts", "posts", "talent.posts_by_role.", "roles"),
)  # fmt: skip
BY_KEY = {m.key: m for m in METRICS}
POOL_COUNTERS = tuple(m.counter for m in METRICS if m.pool)  # prefixes of the rm_metrics names of pools


def metric(key: str) -> Metric:
    return BY_KEY[key]


@cache
def vocabulary(name: str) -> dict[str, dict[str, str]]:
    """A producer's list (`event_types`, `groups`, `roles`): key → {"zh": …, "en": …}, in its order."""
    for path in sorted(VOCABULARIES.glob("*.json")):
        published: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if name in published:
            entries: dict[str, dict[str, str]] = published[name]
            return entries
    raise KeyError(f"no vocabulary publishes {name!r}")


def keys_of(name: str) -> tuple[str, ...]:
    return tuple(vocabulary(name))


def label(name: str, key: str, lang: str) -> str:
    """A key's label; a key outside the vocabulary reads as itself (it is still counted and shown)."""
    return vocabulary(name).get(key, {}).get(lang) or key


def labels() -> dict[str, Any]:
    """What the dashboard shows, in both languages: every metric's label and unit, and the vocabularies
    (served as `/dashboard/labels.json`)."""
    breakdowns = {m.vocabulary for m in METRICS if m.vocabulary}
    return {
        "metrics": {m.key: {"zh": m.zh, "en": m.en, "unit": m.unit} for m in METRICS},
        **{name: vocabulary(name) for name in sorted(breakdowns)},
        "dashboard": dashboard_layout(),
    }


def dashboard_layout() -> dict[str, list[Any]]:
    """Which figures the dashboard shows where, sections in the page's order (events first)."""
    shown = sorted(METRICS, key=lambda m: DASHBOARD_SECTIONS.index(m.section))
    return {
        "table": [m.key for m in shown if m.dashboard],
        "cards": [m.key for m in shown if m.dashboard == "card"],
        "breakdowns": [[m.key, m.vocabulary] for m in shown if m.vocabulary],
    }
