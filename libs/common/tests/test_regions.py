"""Tests of common.regions: the region catalogue and country -> region attribution."""

import json
from pathlib import Path

import common.regions as regions
import pycountry
import pytest
from common.regions import (
    GROUPS_FILE_ENV,
    KIND_ORDER,
    PROVINCES,
    GroupsFileError,
    RegionCatalogue,
    UnknownCountry,
    UnknownProvince,
    UnknownRegion,
    all_regions,
    countries_of_region,
    is_country_code,
    is_province_code,
    province,
    province_region,
    region,
    regions_of_country,
)

TOP_LEVEL_M49 = {"m49:002", "m49:009", "m49:019", "m49:142", "m49:150"}


def test_germany() -> None:
    found = regions_of_country("DE")
    assert {"m49:150", "m49:155", "group:eu"} <= found
    assert "group:nordic" not in found
    assert "all" not in found


def test_sweden_is_nordic_and_eu() -> None:
    assert {"group:nordic", "group:eu", "m49:150", "m49:154"} <= regions_of_country("SE")


def test_thailand() -> None:
    assert {"group:asean", "group:lmc", "m49:035", "m49:142"} <= regions_of_country("TH")


@pytest.mark.parametrize("alpha2", ["TW", "HK", "MO"])
def test_hong_kong_macao_taiwan(alpha2: str) -> None:
    found = regions_of_country(alpha2)
    assert {"group:hkmotw", "m49:030", "m49:142"} <= found
    assert not {"group:bri", "group:asean"} & found


def test_hkmotw_members() -> None:
    assert countries_of_region("group:hkmotw") == {"HK", "MO", "TW"}


def test_kosovo() -> None:
    assert is_country_code("XK")
    assert regions_of_country("XK") == {"m49:150", "m49:039"}


def test_china_is_eastern_asia_and_in_no_group() -> None:
    assert regions_of_country("CN") == {"m49:030", "m49:142"}


def test_intermediate_region() -> None:
    assert {"m49:002", "m49:202", "m49:014"} <= regions_of_country("KE")


def test_antarctica_is_put_in_oceania() -> None:
    assert regions_of_country("AQ") == {"m49:009"}


def test_every_country_has_a_world_region() -> None:
    for country in pycountry.countries:
        found = regions_of_country(country.alpha_2)
        assert len(found & TOP_LEVEL_M49) == 1, country.alpha_2


def test_group_sizes() -> None:
    assert len(countries_of_region("group:eu")) == 27
    assert countries_of_region("group:nordic") == {"DK", "FI", "IS", "NO", "SE"}
    assert countries_of_region("group:lmc") == {"KH", "LA", "MM", "TH", "VN"}
    assert {"KZ", "RU", "IN", "PK", "IR", "BY"} <= countries_of_region("group:sco")
    assert len(countries_of_region("group:bri")) > 100
    for code in ("group:asean", "group:sco", "group:eu", "group:bri", "group:brics", "group:lmc"):
        assert "CN" not in countries_of_region(code)
    assert all(g.source for g in regions.groups())


def test_attribution_is_consistent_both_ways() -> None:
    every = countries_of_region("all")
    assert every >= {c.alpha_2 for c in pycountry.countries} | {"XK"}
    for alpha2 in every:
        for code in regions_of_country(alpha2):
            assert alpha2 in countries_of_region(code)
    for r in all_regions():
        if r.kind in ("world", "group"):
            for alpha2 in countries_of_region(r.code):
                assert r.code in regions_of_country(alpha2)
        elif r.kind in ("province", "national"):
            assert countries_of_region(r.code) == frozenset()


def test_all_regions_order_and_names() -> None:
    listed = all_regions()
    codes = [r.code for r in listed]
    assert len(codes) == len(set(codes))
    assert listed[0].code == "all"
    assert listed[-1].code == "cn:national"
    ranks = [KIND_ORDER.index(r.kind) for r in listed]
    assert ranks == sorted(ranks)
    assert {r.kind for r in listed} == set(KIND_ORDER)
    for r in listed:
        assert r.name.strip() and r.name_zh.strip(), r.code
        assert region(r.code) == r
    assert region("m49:150").name_zh == "欧洲"
    assert region("m49:035").name == "South-eastern Asia"
    assert region("group:asean").kind == "group"
    assert {"m49:155", "m49:014"} <= set(codes)


def test_provinces() -> None:
    assert len(PROVINCES) == 34
    assert len({p.code for p in PROVINCES}) == 34
    guangdong = province("440000")
    assert (guangdong.name_en, guangdong.name_zh) == ("Guangdong", "广东省")
    assert province_region("440000") == "cn:440000"
    assert region("cn:440000").name_zh == "广东省"
    assert region("cn:440000").kind == "province"
    for code in ("110000", "650000", "710000", "810000", "820000"):
        assert is_province_code(code)
    assert not is_province_code("440300")  # Shenzhen: a sub-provincial city, not a province
    assert not is_province_code("660000")  # the XPCC has no GB/T 2260 provincial code
    assert region("cn:national").kind == "national"


def test_unknown_codes_raise() -> None:
    for bad in ("ZZ", "de", "", "DEU"):
        assert not is_country_code(bad)
        with pytest.raises(ValueError):
            regions_of_country(bad)
    with pytest.raises(UnknownCountry):
        regions_of_country("EU")
    for bad_region in ("m49:999", "group:nope", "cn:440300", "ALL", ""):
        with pytest.raises(KeyError):
            region(bad_region)
        with pytest.raises(UnknownRegion):
            countries_of_region(bad_region)
    for bad_province in ("440300", "44", "cn:440000"):
        with pytest.raises(UnknownProvince):
            province(bad_province)
        with pytest.raises(KeyError):
            province_region(bad_province)
        with pytest.raises(ValueError):
            province_region(bad_province)


def _write_groups(path: Path, groups: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"groups": groups}, ensure_ascii=False), encoding="utf-8")
    return path


def _group(code: str, members: list[str]) -> dict[str, object]:
    return {"code": code, "name_en": code.upper(), "name_zh": code, "source": "test", "members": members}


def test_groups_file_from_env_and_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = _write_groups(tmp_path / "groups.json", [_group("asean", ["TH", "DE"]), _group("g7", ["de", "FR", "JP"])])
    assert "group:asean" not in regions_of_country("DE")
    monkeypatch.setenv(GROUPS_FILE_ENV, str(custom))
    try:
        regions.reload()
        assert regions.default_catalogue().groups_file == custom
        assert {"group:asean", "group:g7"} <= regions_of_country("DE")
        assert "group:eu" not in regions_of_country("DE")
        assert countries_of_region("group:g7") == {"DE", "FR", "JP"}
        assert region("group:g7").name == "G7"
        assert "group:asean" not in regions_of_country("VN")
        with pytest.raises(UnknownRegion):
            region("group:eu")
    finally:
        monkeypatch.delenv(GROUPS_FILE_ENV)
        regions.reload()
    assert "group:asean" not in regions_of_country("DE")
    assert "group:eu" in regions_of_country("DE")
    assert regions.default_catalogue().groups_file is None


def test_bad_groups_file_is_rejected_and_keeps_state(tmp_path: Path) -> None:
    good = _write_groups(tmp_path / "good.json", [_group("nordic", ["DK"])])
    catalogue = RegionCatalogue(good)
    assert catalogue.countries_of_region("group:nordic") == {"DK"}
    assert catalogue.regions_of_country("SE") == regions_of_country("SE") - {"group:nordic", "group:eu"}

    _write_groups(good, [_group("nordic", ["DK", "QQ"])])
    with pytest.raises(GroupsFileError, match="QQ"):
        catalogue.reload()
    assert catalogue.countries_of_region("group:nordic") == {"DK"}

    for broken in (
        "not json",
        json.dumps({"groups": [_group("Bad Code", ["DK"])]}),
        json.dumps({"groups": [_group("x", ["DK"]), _group("x", ["SE"])]}),
        json.dumps({"groups": [{**_group("x", ["DK"]), "member": ["SE"]}]}),
        json.dumps({"groups": [{"code": "x", "members": ["DK"]}]}),
        json.dumps([]),
    ):
        (tmp_path / "broken.json").write_text(broken, encoding="utf-8")
        with pytest.raises(GroupsFileError):
            RegionCatalogue(tmp_path / "broken.json")
    with pytest.raises(GroupsFileError):
        RegionCatalogue(tmp_path / "missing.json")
