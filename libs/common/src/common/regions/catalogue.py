"""The region catalogue: every reporting region and which countries belong to which region.

Reports are cut two ways (see ``shared/domain/DOMAIN.md``, *Regions*, and the public contract, *reporting*):

* **Partner side** -- world regions and named groups of countries:

  - ``m49:<ccc>``: UN M49 regions, sub-regions and intermediate regions (three digits, zero padded:
    ``m49:150`` Europe, ``m49:155`` Western Europe, ``m49:014`` Eastern Africa). Membership comes from the
    M49 codes that *hdx-python-country* ships per country (read offline). English names are the UN M49
    names as shipped by hdx; Chinese names are CLDR's (Babel), except where CLDR labels a different
    grouping (419, 053) or has no name (830).
  - ``group:<code>``: named, overlapping groups (ASEAN, SCO, EU, Nordic, Belt and Road, BRICS,
    Lancang-Mekong, Hong Kong/Macao/Taiwan) read from ``data/groups.json`` or from the file named by the
    environment variable ``EXCHANGE_REGION_GROUPS_FILE``. Groups are partner-side sets: China is not a
    member of any shipped group.

* **Home side** -- ``cn:<gbt2260>`` for the 34 provincial-level divisions (``cn:440000`` Guangdong) and
  ``cn:national`` for national bodies (HQ and national societies).

Plus ``all``. Countries are ISO 3166-1 alpha-2 codes (every code pycountry knows) plus ``XK`` (Kosovo,
user-assigned but in common use). Decisions on disputed or unusual cases:

* ``TW``, ``HK`` and ``MO`` are in Eastern Asia (``m49:030``) and Asia (``m49:142``), as hdx ships them,
  and in ``group:hkmotw``; ``CN`` is in Eastern Asia and Asia only.
* ``XK`` is in Southern Europe (``m49:039``) and Europe (``m49:150``), as UN M49 lists Kosovo's area
  under Serbia.
* ``AQ`` (Antarctica) has no M49 region (M49 puts it directly under World, 001). Following CLDR's
  territory containment (Outlying Oceania, part of 009) it is put in Oceania (``m49:009``) so that every
  country has a world region.

``regions_of_country`` is on the hot path of the metric projections, so every answer is precomputed
into a dictionary of frozensets when the catalogue is (re)loaded.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, cast

logger = logging.getLogger(__name__)

GROUPS_FILE_ENV: Final = "EXCHANGE_REGION_GROUPS_FILE"

RegionKind = Literal["all", "world", "group", "province", "national"]
KIND_ORDER: Final[tuple[RegionKind, ...]] = ("all", "world", "group", "province", "national")

ALL: Final = "all"
NATIONAL: Final = "cn:national"
M49_PREFIX: Final = "m49:"
GROUP_PREFIX: Final = "group:"
PROVINCE_PREFIX: Final = "cn:"

# Countries used in practice that ISO 3166-1 does not assign, with their M49 codes (region, sub-region).
_EXTRA_COUNTRIES: Final[Mapping[str, tuple[str, ...]]] = {"XK": ("150", "039")}
# ISO countries for which hdx ships no M49 region: see the module docstring.
_M49_OVERRIDES: Final[Mapping[str, tuple[str, ...]]] = {"AQ": ("009",)}
# Chinese names where CLDR has none, or where CLDR's label names a different grouping than the M49 code.
_M49_ZH_OVERRIDES: Final[Mapping[str, str]] = {
    "053": "澳大利亚和新西兰",  # CLDR: 澳大拉西亚 (Australasia)
    "419": "拉丁美洲和加勒比",  # CLDR: 拉丁美洲 (Latin America), M49 419 includes the Caribbean
    "830": "海峡群岛",  # Channel Islands: not in CLDR
}

_GROUP_CODE_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_GROUP_KEYS: Final = frozenset({"code", "name_en", "name_zh", "members", "source", "note", "as_of"})
_GROUP_REQUIRED: Final = frozenset({"code", "name_en", "name_zh", "members", "source"})


class UnknownRegion(KeyError):
    """No region has this code."""

    def __str__(self) -> str:
        return f"unknown region code: {self.args[0]!r}" if self.args else "unknown region code"


class UnknownCountry(ValueError):
    """Not an ISO 3166-1 alpha-2 country code (nor ``XK``)."""

    def __str__(self) -> str:
        return f"unknown country code: {self.args[0]!r}" if self.args else "unknown country code"


class UnknownProvince(KeyError, ValueError):
    """Not the GB/T 2260 code of one of the 34 provincial-level divisions."""

    def __str__(self) -> str:
        return f"unknown provincial code: {self.args[0]!r}" if self.args else "unknown provincial code"


class GroupsFileError(ValueError):
    """The groups file is missing, not JSON, or not of the expected shape."""


@dataclass(frozen=True, slots=True)
class Region:
    """A reporting region, as served by ``GET /v1/regions``."""

    code: str
    name: str
    name_zh: str
    kind: RegionKind


@dataclass(frozen=True, slots=True)
class Group:
    """A named group of countries, as read from the groups file."""

    code: str
    name_en: str
    name_zh: str
    members: frozenset[str]
    source: str
    note: str | None = None
    as_of: str | None = None

    @property
    def region_code(self) -> str:
        return GROUP_PREFIX + self.code


@dataclass(frozen=True, slots=True)
class Province:
    """A provincial-level division of China (GB/T 2260).

    The 34 divisions: 23 provinces (including Taiwan, 710000), 5 autonomous regions, 4 municipalities and
    2 special administrative regions (Hong Kong 810000, Macao 820000). The Xinjiang Production and
    Construction Corps (新疆生产建设兵团) reports like a provincial association but has no GB/T 2260
    provincial code, so it is not one of them; nor are sub-provincial cities (city-level codes such as
    440300 Shenzhen). Callers decide how such bodies are attributed.
    """

    code: str
    name_zh: str
    name_en: str

    @property
    def region_code(self) -> str:
        return PROVINCE_PREFIX + self.code


# ---------------------------------------------------------------------------------------------------------
# Static data (does not depend on the groups file): loaded once per process.


@dataclass(frozen=True, slots=True)
class _World:
    countries: frozenset[str]
    m49_of_country: Mapping[str, frozenset[str]]  # alpha-2 -> {"m49:150", "m49:155"}
    m49_names: Mapping[str, tuple[str, str]]  # "m49:150" -> ("Europe", "欧洲")


def _m49(code: object) -> str | None:
    """hdx ships M49 codes as unpadded strings ('30'); normalise to three digits."""
    if code is None:
        return None
    text = str(code).strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"unexpected M49 code {text!r}")
    return text.zfill(3)


@functools.cache
def _world() -> _World:
    import babel
    import pycountry
    from hdx.location.country import Country

    data = cast(dict[str, Any], Country.countriesdata(use_live=False))
    iso2iso3 = cast(Mapping[str, str], data["iso2iso3"])
    infos = cast(Mapping[str, Mapping[str, Any]], data["countries"])

    alpha2s = {str(c.alpha_2) for c in pycountry.countries} | set(_EXTRA_COUNTRIES)
    by_country: dict[str, frozenset[str]] = {}
    for alpha2 in sorted(alpha2s):
        codes: tuple[str, ...]
        if alpha2 in _EXTRA_COUNTRIES:
            codes = _EXTRA_COUNTRIES[alpha2]
        elif alpha2 in _M49_OVERRIDES:
            codes = _M49_OVERRIDES[alpha2]
        else:
            info = infos.get(iso2iso3.get(alpha2, ""), {})
            found = (
                _m49(info.get("Region Code")),
                _m49(info.get("Sub-region Code")),
                _m49(info.get("Intermediate Region Code")),
            )
            codes = tuple(c for c in found if c is not None)
        if not codes:
            logger.warning("country %s has no UN M49 region; it counts in no world region", alpha2)
        by_country[alpha2] = frozenset(M49_PREFIX + c for c in codes)

    hdx_names = {str(k).zfill(3): str(v) for k, v in cast(Mapping[Any, Any], data["regioncodes2names"]).items()}
    cldr_en = babel.Locale("en").territories
    cldr_zh = babel.Locale("zh").territories
    names: dict[str, tuple[str, str]] = {}
    for region_code in sorted(set().union(*by_country.values())):
        m49 = region_code.removeprefix(M49_PREFIX)
        name = hdx_names.get(m49) or cldr_en.get(m49) or region_code
        name_zh = _M49_ZH_OVERRIDES.get(m49) or cldr_zh.get(m49) or name
        names[region_code] = (name, name_zh)
    return _World(countries=frozenset(by_country), m49_of_country=by_country, m49_names=names)


def _read_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GroupsFileError(f"{where}: not valid JSON: {exc}") from exc


@functools.cache
def _provinces() -> tuple[Province, ...]:
    text = resources.files(__package__ or "common.regions").joinpath("data/provinces.json").read_text("utf-8")
    raw = json.loads(text)
    return tuple(
        Province(code=str(p["code"]), name_zh=str(p["name_zh"]), name_en=str(p["name_en"]))
        for p in sorted(raw["provinces"], key=lambda p: str(p["code"]))
    )


PROVINCES: Final[tuple[Province, ...]] = _provinces()
_PROVINCE_BY_CODE: Final[Mapping[str, Province]] = {p.code: p for p in PROVINCES}


def is_province_code(code6: str) -> bool:
    """Whether ``code6`` is the GB/T 2260 code of one of the 34 provincial-level divisions."""
    return code6 in _PROVINCE_BY_CODE


def province(code6: str) -> Province:
    """The provincial-level division with this GB/T 2260 code; ``UnknownProvince`` otherwise."""
    try:
        return _PROVINCE_BY_CODE[code6]
    except (KeyError, TypeError):
        raise UnknownProvince(code6) from None


def province_region(code6: str) -> str:
    """The region code of a province: ``"440000"`` -> ``"cn:440000"``; ``UnknownProvince`` otherwise."""
    return province(code6).region_code


def country_codes() -> frozenset[str]:
    """Every code ``is_country_code`` accepts."""
    return _world().countries


def is_country_code(alpha2: str) -> bool:
    """Whether ``alpha2`` is an ISO 3166-1 alpha-2 code (as pycountry knows them) or ``XK``; upper case."""
    return alpha2 in _world().countries


# ---------------------------------------------------------------------------------------------------------
# Groups file


def _default_groups_text() -> str:
    return resources.files(__package__ or "common.regions").joinpath("data/groups.json").read_text("utf-8")


def _parse_groups(raw: Any, where: str, countries: frozenset[str]) -> tuple[Group, ...]:
    def fail(message: str) -> GroupsFileError:
        return GroupsFileError(f"{where}: {message}")

    items = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise fail('expected an object with a "groups" list')
    groups: list[Group] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise fail(f"groups[{index}]: expected an object")
        keys = {k for k in item if not str(k).startswith("_")}
        if missing := sorted(_GROUP_REQUIRED - keys):
            raise fail(f"groups[{index}]: missing {', '.join(missing)}")
        if unknown := sorted(keys - _GROUP_KEYS):
            raise fail(f"groups[{index}]: unknown field(s) {', '.join(unknown)}")
        code = item["code"]
        if not isinstance(code, str) or not _GROUP_CODE_RE.match(code):
            raise fail(f"groups[{index}]: code must match {_GROUP_CODE_RE.pattern}, got {code!r}")
        if code in seen:
            raise fail(f"duplicate group code {code!r}")
        seen.add(code)
        for key in ("name_en", "name_zh", "source"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise fail(f"group {code!r}: {key} must be a non-empty string")
        for key in ("note", "as_of"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise fail(f"group {code!r}: {key} must be a string")
        members = item["members"]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise fail(f"group {code!r}: members must be a list of country codes")
        normalised = {m.strip().upper() for m in members}
        if unknown_members := sorted(normalised - countries):
            raise fail(f"group {code!r}: unknown country code(s) {', '.join(unknown_members)}")
        groups.append(
            Group(
                code=code,
                name_en=item["name_en"].strip(),
                name_zh=item["name_zh"].strip(),
                members=frozenset(normalised),
                source=item["source"].strip(),
                note=item.get("note"),
                as_of=item.get("as_of"),
            )
        )
    return tuple(sorted(groups, key=lambda g: g.code))


def load_groups(path: str | os.PathLike[str] | None = None) -> tuple[Group, ...]:
    """Read and validate a groups file (the packaged ``data/groups.json`` when ``path`` is None)."""
    if path is None:
        where, text = "common/regions/data/groups.json", _default_groups_text()
    else:
        where = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise GroupsFileError(f"{where}: cannot read groups file: {exc}") from exc
    return _parse_groups(_read_json(text, where), where, _world().countries)


# ---------------------------------------------------------------------------------------------------------
# The catalogue


@dataclass(frozen=True, slots=True)
class _State:
    groups_file: Path | None
    groups: tuple[Group, ...]
    regions: tuple[Region, ...]
    by_code: Mapping[str, Region]
    by_country: Mapping[str, frozenset[str]]
    countries_of: Mapping[str, frozenset[str]]


def _build(groups_file: Path | None) -> _State:
    world = _world()
    groups = load_groups(groups_file)

    regions: list[Region] = [Region(ALL, "All regions", "全部地区", "all")]
    regions += [Region(code, *world.m49_names[code], "world") for code in sorted(world.m49_names)]
    regions += [Region(g.region_code, g.name_en, g.name_zh, "group") for g in groups]
    regions += [Region(p.region_code, p.name_en, p.name_zh, "province") for p in PROVINCES]
    national = ("National bodies (HQ and national societies)", "全国性机构（总部及全国学会）")
    regions.append(Region(NATIONAL, *national, "national"))

    members: dict[str, set[str]] = {r.code: set() for r in regions}
    members[ALL] = set(world.countries)
    by_country: dict[str, frozenset[str]] = {}
    for alpha2 in sorted(world.countries):
        codes = set(world.m49_of_country[alpha2])
        codes.update(g.region_code for g in groups if alpha2 in g.members)
        for code in codes:
            members[code].add(alpha2)
        by_country[alpha2] = frozenset(codes)

    return _State(
        groups_file=groups_file,
        groups=groups,
        regions=tuple(regions),
        by_code={r.code: r for r in regions},
        by_country=by_country,
        countries_of={code: frozenset(found) for code, found in members.items()},
    )


class RegionCatalogue:
    """Every region and the country -> region attribution, loaded once and swapped whole on ``reload()``.

    ``groups_file``: the groups JSON to use; when None, the file named by ``EXCHANGE_REGION_GROUPS_FILE``
    (read again at every ``reload()``), else the packaged ``data/groups.json``. A file that does not load
    raises ``GroupsFileError``; on ``reload()`` the previous state is then kept.
    """

    def __init__(self, groups_file: str | os.PathLike[str] | None = None) -> None:
        self._explicit_groups_file = Path(groups_file) if groups_file is not None else None
        self._lock = threading.Lock()
        self._state = _build(self._groups_file())

    def _groups_file(self) -> Path | None:
        if self._explicit_groups_file is not None:
            return self._explicit_groups_file
        from_env = os.environ.get(GROUPS_FILE_ENV, "").strip()
        return Path(from_env) if from_env else None

    def reload(self) -> None:
        """Re-read the groups file (and the environment variable) and rebuild every attribution."""
        with self._lock:
            self._state = _build(self._groups_file())

    @property
    def groups_file(self) -> Path | None:
        """The groups file in use; None for the packaged default."""
        return self._state.groups_file

    def groups(self) -> list[Group]:
        return list(self._state.groups)

    def all_regions(self) -> list[Region]:
        """``all``, world regions, groups, provinces, ``cn:national``; by code within each kind."""
        return list(self._state.regions)

    def region(self, code: str) -> Region:
        try:
            return self._state.by_code[code]
        except (KeyError, TypeError):
            raise UnknownRegion(code) from None

    def is_region_code(self, code: str) -> bool:
        return code in self._state.by_code

    def regions_of_country(self, alpha2: str) -> frozenset[str]:
        """The world regions (M49 region, sub-region, intermediate region) and groups containing the
        country; not ``all``. ``UnknownCountry`` (a ValueError) for anything but an upper-case
        ISO 3166-1 alpha-2 code or ``XK``."""
        try:
            return self._state.by_country[alpha2]
        except (KeyError, TypeError):
            raise UnknownCountry(alpha2) from None

    def countries_of_region(self, code: str) -> frozenset[str]:
        """The countries in a world region or group; every country for ``all``; none for the home-side
        regions (provinces, ``cn:national``). ``UnknownRegion`` for an unknown code."""
        try:
            return self._state.countries_of[code]
        except (KeyError, TypeError):
            raise UnknownRegion(code) from None


# ---------------------------------------------------------------------------------------------------------
# Module-level API on a default catalogue


@functools.cache
def default_catalogue() -> RegionCatalogue:
    """The process-wide catalogue used by the module-level functions (built on first use)."""
    return RegionCatalogue()


def reload() -> None:
    """Reload the default catalogue: re-reads ``EXCHANGE_REGION_GROUPS_FILE`` and the groups file."""
    default_catalogue().reload()


def all_regions() -> list[Region]:
    return default_catalogue().all_regions()


def region(code: str) -> Region:
    return default_catalogue().region(code)


def is_region_code(code: str) -> bool:
    return default_catalogue().is_region_code(code)


def groups() -> list[Group]:
    return default_catalogue().groups()


def regions_of_country(alpha2: str) -> frozenset[str]:
    return default_catalogue().regions_of_country(alpha2)


def countries_of_region(code: str) -> frozenset[str]:
    return default_catalogue().countries_of_region(code)


def regions_of_countries(alpha2s: Iterable[str]) -> frozenset[str]:
    """The union of ``regions_of_country`` over several countries (an event's ``countries``)."""
    catalogue = default_catalogue()
    found: set[str] = set()
    for alpha2 in alpha2s:
        found |= catalogue.regions_of_country(alpha2)
    return frozenset(found)
