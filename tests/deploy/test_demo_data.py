"""The demo dataset's generator (deploy/local/demo.py): the same seed gives the same data, and the data has
the shape and proportions DOMAIN.md describes. Its loading through the APIs is in tests/system/test_make_run.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from common.regions import regions_of_country
from events.domain.model import EventCreate
from partners.domain.names import ror_id

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 5)
CLIENT = httpx.Client  # the real one, for the tests that put a fake transport under `demo.load`


@cache
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "deploy" / "local" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return module


@cache
def full():  # type: ignore[no-untyped-def]
    return demo().generate(scale=1.0, year=2026, today=TODAY)


def events(data) -> list[dict]:  # type: ignore[no-untyped-def]
    return [event for items in data.events.values() for event in items]


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another():
    again = demo().generate(scale=1.0, year=2026, today=TODAY)
    assert again == full()
    other = demo().generate(scale=1.0, year=2026, today=TODAY, seed=1)
    assert other.events != full().events and other.talent != full().talent


def counts(data) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return len(data.organizations), len(data.agreements), data.event_count, data.people_count


def test_another_day_moves_only_the_agreements_dates_so_a_later_load_finds_the_rest_unchanged():
    later = demo().generate(scale=1.0, year=2026, today=TODAY + timedelta(days=3))
    assert later.organizations == full().organizations
    assert later.events == full().events and later.talent == full().talent
    assert [a["external_ref"] for a in later.agreements] == [a["external_ref"] for a in full().agreements]


def test_the_counts_are_the_plans_and_scale_with_the_factor():
    assert counts(full()) == (150, 120, 2300, 10_000)
    assert len(full().talent) == 50
    assert counts(demo().generate(scale=0.1, year=2026, today=TODAY)) == (15, 12, 230, 1000)


def test_posts_are_530_with_the_seeds_presidents_vice_presidents_and_board_seats():
    roles = Counter(post["role"] for people in full().talent.values() for person in people for post in person["posts"])
    assert sum(roles.values()) == 530
    assert (roles["president"], roles["vice_president"], roles["executive_board"]) == (34, 48, 78)
    assert set(roles) >= {"secretary_general", "committee_chair", "member", "other"}


def test_events_have_the_seeds_ratios_of_participants_foreign_participants_and_papers():
    items = events(full())
    participants = sum(e["participants"] for e in items)
    foreign = sum(e["foreign_participants"] for e in items)
    papers = sum(e["papers"] for e in items)
    # 2015: 2,278 conferences, 577,000 participants, 43,000 of them from abroad, 96,000 papers.
    assert participants / len(items) == pytest.approx(577_000 / 2_278, rel=0.15)
    assert foreign / participants == pytest.approx(43_000 / 577_000, rel=0.15)
    assert papers / len(items) == pytest.approx(96_000 / 2_278, rel=0.15)
    assert all(0 <= e["foreign_participants"] <= e["participants"] for e in items)
    assert {e["start_date"][:4] for e in items} == {"2026"}


def test_events_come_from_all_31_provinces_and_the_national_bodies_each_with_its_own_organizer():
    organizers = full().events.keys()
    assert len({code for kind, code in organizers if kind == "province"}) == 31
    assert {kind for kind, _ in organizers} == {"province", "society", "hq"}
    assert set(Counter(e["type"] for e in events(full()))) == set(demo().EVENT_TYPES)


def test_every_event_is_valid_for_the_events_api():
    for event in events(full()):
        EventCreate.model_validate(event)


def test_partners_cover_every_world_region_with_valid_ror_ids_and_agreements_of_every_kind():
    data = full()
    continents = {"m49:002", "m49:019", "m49:142", "m49:150", "m49:009"}  # Africa, Americas, Asia, Europe, Oceania
    reached = {r for org in data.organizations if org["country"] for r in regions_of_country(org["country"])}
    assert continents <= reached
    assert any(org["country"] is None for org in data.organizations)  # international organizations
    rors = [org["ror_id"] for org in data.organizations if "ror_id" in org]
    assert 30 <= len(rors) < len(data.organizations)
    assert all(ror_id(value) == value for value in rors)  # the partners service's own check
    assert len({(org["name"].lower(), org["country"]) for org in data.organizations}) == 150  # no duplicates
    assert {a["kind"] for a in data.agreements} == set(demo().AGREEMENT_KINDS)


def test_agreements_spread_their_expiry_some_expired_some_expiring_soon():
    expiries = [date.fromisoformat(a["expires_on"]) for a in full().agreements if "expires_on" in a]
    expired = sum(d < TODAY for d in expiries)
    soon = sum(TODAY <= d <= TODAY + timedelta(days=90) for d in expiries)
    later = sum(d > TODAY + timedelta(days=90) for d in expiries)
    assert expired >= 5 and soon >= 5 and later >= 50, (expired, soon, later)
    for agreement in full().agreements:
        assert date.fromisoformat(agreement["signed_on"]) < TODAY
        if "expires_on" in agreement:
            assert agreement["expires_on"] > agreement["signed_on"]


def test_people_have_unique_ids_per_society_and_groups_from_the_contract():
    groups = {"leading_scientist", "engineer", "young_scientist", "woman_scientist", "youth", "overseas_expert"}
    for society, people in full().talent.items():
        ids = [p["external_id"] for p in people]
        assert len(set(ids)) == len(ids) and all(i.startswith(society) for i in ids)
        assert all(p["groups"] and set(p["groups"]) <= groups for p in people)
        assert all((p["province"] is None) or p["country"] == "CN" for p in people)


def load_on(day: date, monkeypatch) -> list[tuple[str, str, object]]:  # type: ignore[no-untyped-def]
    """What `demo.load` sends when run on `day`: (path, the token's (kind, code, scopes), body), the services
    answering as on a first load."""
    sent: list[tuple[str, str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append((request.url.path, request.headers["authorization"].removeprefix("Bearer "), body))
        if request.url.path.endswith("/organizations"):
            return httpx.Response(201, json={"id": f"id-{len(sent)}"})
        if request.url.path.endswith("/agreements"):
            return httpx.Response(201, json={"id": f"id-{len(sent)}"})
        if request.url.path.endswith("/batch"):
            items = [{"external_ref": e["external_ref"], "status": "created"} for e in body["events"]]
            return httpx.Response(200, json={"items": items})
        return httpx.Response(200, json={"created": len(body["records"])})

    class Today(date):
        @classmethod
        def today(cls) -> date:
            return day

    module = demo()
    transport = httpx.MockTransport(answer)
    monkeypatch.setattr(module, "date", Today)
    monkeypatch.setattr(module.httpx, "Client", lambda **kw: CLIENT(transport=transport, **kw))
    urls = {name: f"http://{name}" for name in ("partners", "events", "talent", "reporting")}
    module.load(urls, lambda kind, code, scopes: f"{kind}|{code}|{scopes}", scale=0.1)
    return sent


def test_a_load_in_a_new_year_sends_the_same_people_events_and_organizations(monkeypatch):
    """Idempotency across 31 December: a second `make run` in January finds everything there (only the
    agreements' dates, which follow the day, may differ; they are found by external_ref all the same)."""
    before = load_on(date(2026, 12, 31), monkeypatch)
    after = load_on(date(2027, 1, 2), monkeypatch)

    def stable(sent):  # type: ignore[no-untyped-def]
        return [item for item in sent if not item[0].endswith("/agreements")]

    def agreement_refs(sent):  # type: ignore[no-untyped-def]
        return [(token, body["external_ref"]) for path, token, body in sent if path.endswith("/agreements")]

    assert stable(after) == stable(before)
    assert agreement_refs(after) == agreement_refs(before)


def test_partners_are_written_with_partners_write_alone_and_some_agreements_by_a_province(monkeypatch):
    sent = load_on(TODAY, monkeypatch)
    partners = [(path, token) for path, token, _ in sent if path.startswith("/v1/partners/")]
    assert all(token.split("|")[2] == "partners:write" for _, token in partners), set(partners)  # no admin
    assert {token for path, token in partners if path.endswith("/organizations")} == {"hq|HQ|partners:write"}
    signers = Counter(token.split("|")[0] for path, token in partners if path.endswith("/agreements"))
    assert signers["hq"] > 0 and signers["province"] > 0, signers
    assert all("signed_by" not in body for path, _, body in sent if path.endswith("/agreements"))
