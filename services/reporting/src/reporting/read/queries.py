"""Read models: the figures of regions, targets and reporting bodies, from the current generation.

Figures that depend on today's date (active and expiring agreements) are computed here, against the
per-agreement rows, so they stay true as days pass without any message arriving.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from common.regions import PROVINCES, all_regions
from common.settings import association_today
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reporting.adapters.writers import generation_store
from reporting.catalogue import BY_KEY, METRICS, SECTIONS, Metric, keys_of
from reporting.projections.attribution import BODY_PREFIX, OPEN_POSTS, is_pool_metric

EXPIRING_DAYS = 90
CURRENT_GEN = "(SELECT current FROM rm_generation WHERE id = 1)"


@contextlib.asynccontextmanager
async def one_snapshot(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose statements all read one snapshot, for reads of more than one statement: a
    rebuild's swap committed between them must not mix two generations."""
    async with sessions() as session:
        await generation_store(session).read_one_snapshot()
        yield session


@dataclass
class RegionFigures:
    values: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    countries: dict[str, int] = field(default_factory=dict)
    agreements_active: int = 0
    agreements_expiring: int = 0


def _region_filter(regions: Sequence[str] | None) -> tuple[str, dict[str, Any], list[Any]]:
    if regions is None:
        return "region NOT LIKE 'body:%'", {}, []
    return "region IN :regions", {"regions": list(regions)}, [bindparam("regions", expanding=True)]


async def read_figures(
    session: AsyncSession, regions: Sequence[str] | None, year: int, today: date
) -> dict[str, RegionFigures]:
    """Figures per region for `year` (0: all years); `regions` None reads every non-body region.

    One statement (one round trip, one snapshot): counters, distinct countries, and the agreements in
    force today and expiring within 90 days."""
    where, params, binds = _region_filter(regions)
    figures: dict[str, RegionFigures] = defaultdict(RegionFigures)
    if year:
        years_clause = f"(year IN (:year, 0) OR (year BETWEEN 1 AND :year AND metric LIKE '{OPEN_POSTS}%'))"
    else:
        years_clause = "year = 0"
    sql = text(
        f"SELECT 'm', region, year, metric, value FROM rm_metrics WHERE gen = {CURRENT_GEN} AND {where} "
        f"AND {years_clause} "
        "UNION ALL "
        f"SELECT 'c', region, 0, kind, count(*) FROM rm_country_refs WHERE gen = {CURRENT_GEN} AND {where} "
        "AND year = :year AND n > 0 GROUP BY region, kind "
        "UNION ALL "
        "SELECT 'a', region, 0, 'active', count(*) FROM rm_agreement_regions "
        f"WHERE gen = {CURRENT_GEN} AND {where} AND status = 'active' "
        "AND (expires_on IS NULL OR expires_on >= :today) AND (:year = 0 OR signed_year <= :year) GROUP BY region "
        "UNION ALL "
        "SELECT 'e', region, 0, 'expiring', count(*) FROM rm_agreement_regions "
        f"WHERE gen = {CURRENT_GEN} AND {where} AND status = 'active' "
        "AND expires_on >= :today AND expires_on <= :horizon AND (:year = 0 OR signed_year <= :year) GROUP BY region"
    ).bindparams(*binds)
    horizon = today + timedelta(days=EXPIRING_DAYS)
    rows = await session.execute(sql, {**params, "year": year, "today": today, "horizon": horizon})
    for source, region, row_year, metric, value in rows:
        entry = figures[region]
        if source == "m":
            if metric.startswith(OPEN_POSTS):
                if year and 1 <= row_year <= year:
                    entry.values[metric.replace(OPEN_POSTS, "talent.posts", 1)] += value
            else:
                # A year's own counters, plus the pools (people, organizations) as they stand (year 0).
                pool = is_pool_metric(metric)
                if not year or (row_year == year and not pool) or (row_year == 0 and pool):
                    entry.values[metric] += value
        elif source == "c":
            entry.countries[metric] = int(value)
        elif source == "a":
            entry.agreements_active = int(value)
        else:
            entry.agreements_expiring = int(value)
    return figures


def _breakdown(values: dict[str, int], prefix: str, keys: Sequence[str]) -> dict[str, int]:
    """Every vocabulary key (0 when nothing counted), then any other key counted (a newer producer's)."""
    found = {k: 0 for k in keys}
    for metric, value in values.items():
        if metric.startswith(prefix):
            found[metric[len(prefix) :]] = value
    return found


def _figure(m: Metric, f: RegionFigures) -> int | dict[str, int]:
    if m.computed == "counter":
        if m.vocabulary:
            return _breakdown(f.values, m.counter, keys_of(m.vocabulary))
        return f.values.get(m.counter, 0)
    if m.computed == "countries":
        return f.countries.get(m.counter, 0)
    if m.computed == "active":
        return f.agreements_active
    return f.agreements_expiring


def metrics_object(region: str, year: int, as_of: datetime, figures: RegionFigures | None) -> dict[str, Any]:
    """The contract's per-region object (`year` null when all years), one entry per catalogue metric."""
    f = figures or RegionFigures()
    obj: dict[str, Any] = {"region": region, "year": year or None, "as_of": as_of.isoformat()}
    for section in SECTIONS:
        obj[section] = {}
    for m in METRICS:
        obj[m.section][m.name] = _figure(m, f)
    return obj


def catalogue_codes(kind: str | None = None) -> list[str]:
    return [r.code for r in all_regions() if kind is None or r.kind == kind]


async def region_objects(
    session: AsyncSession, regions: Sequence[str] | None, year: int, *, today: date | None = None
) -> list[dict[str, Any]]:
    """Objects for `regions` (None: every catalogue region), in the given order."""
    now = datetime.now(UTC)
    codes = list(regions) if regions is not None else catalogue_codes()
    figures = await read_figures(session, regions, year, today or association_today())
    return [metrics_object(code, year, now, figures.get(code)) for code in codes]


# The dashboard's year-over-year series: catalogue metrics counted per year, named as in the catalogue.
TREND = tuple(
    BY_KEY[k]
    for k in ("events.count", "events.participants", "events.foreign_participants", "partners.agreements_signed")
)
_TREND_NAMES = {m.counter: m.name for m in TREND}


async def year_trend(session: AsyncSession, region: str) -> list[dict[str, int]]:
    """Per-year events and agreements of a region (for the dashboard's year-over-year chart)."""
    rows = await session.execute(
        text(
            f"SELECT year, metric, value FROM rm_metrics WHERE gen = {CURRENT_GEN} AND region = :region AND year > 0 "
            "AND metric IN :metrics ORDER BY year"
        ).bindparams(bindparam("metrics", expanding=True)),
        {"region": region, "metrics": list(_TREND_NAMES)},
    )
    by_year: dict[int, dict[str, int]] = {}
    for row_year, metric, value in rows:
        entry = by_year.setdefault(row_year, {"year": row_year})
        entry[_TREND_NAMES[metric]] = value
    return [by_year[y] for y in sorted(by_year)]


async def partner_organizations(session: AsyncSession, year: int, today: date) -> int:
    """Organizations that are party to at least one agreement in force (signed by the end of `year`)."""
    value = await session.scalar(
        text(
            "SELECT count(DISTINCT o.org_id) FROM rm_agreement_orgs o JOIN rm_agreement_regions a "
            "ON a.gen = o.gen AND a.agreement_id = o.agreement_id AND a.region = 'all' "
            f"WHERE o.gen = {CURRENT_GEN} AND a.status = 'active' "
            "AND (a.expires_on IS NULL OR a.expires_on >= :today) AND (:year = 0 OR a.signed_year <= :year)"
        ),
        {"today": today, "year": year},
    )
    return int(value or 0)


_BODY_COUNTS = ("events.count", "partners.agreements_signed", "talent.persons")  # a body's row of the table


async def body_rows(session: AsyncSession, year: int) -> list[dict[str, Any]]:
    """Every province and every body seen, with the year's counts and the time of its last change."""
    seen: dict[tuple[str, str], datetime | None] = {}
    rows = await session.execute(
        text(f"SELECT kind, code, last_change FROM rm_bodies WHERE gen = {CURRENT_GEN} ORDER BY kind, code")
    )
    for kind, code, last_change in rows:
        if isinstance(last_change, str):  # SQLite returns text from a raw query
            last_change = datetime.fromisoformat(last_change)
        if last_change is not None and last_change.tzinfo is None:
            last_change = last_change.replace(tzinfo=UTC)
        seen[(kind, code)] = last_change
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    metric_rows = await session.execute(
        text(
            f"SELECT region, year, metric, value FROM rm_metrics WHERE gen = {CURRENT_GEN} "
            "AND region LIKE 'body:%' AND year IN (:year, 0)"
        ),
        {"year": year},
    )
    for region, row_year, metric, value in metric_rows:
        kind, _, code = region[len(BODY_PREFIX) :].partition(":")
        pool = is_pool_metric(metric)
        if (row_year == year) if not pool else (row_year == 0):
            counts[(kind, code)][metric] += value
    names = {p.code: (p.name_en, p.name_zh) for p in PROVINCES}
    keys = [("province", p.code) for p in PROVINCES]
    keys += sorted(k for k in seen if k not in set(keys))
    result = []
    for kind, code in keys:
        c = counts.get((kind, code), {})
        events, agreements, persons = (c.get(BY_KEY[k].counter, 0) for k in _BODY_COUNTS)
        last = seen.get((kind, code))
        name_en, name_zh = names.get(code, (None, None)) if kind == "province" else (None, None)
        result.append(
            {
                "kind": kind,
                "code": code,
                "name": name_en,
                "name_zh": name_zh,
                "events": events,
                "agreements_signed": agreements,
                "persons": persons,
                "last_change": last.isoformat() if last else None,
                "nothing_recorded": kind == "province" and events == 0 and agreements == 0,
            }
        )
    return result
