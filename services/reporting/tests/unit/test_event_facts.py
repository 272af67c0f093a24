"""The events' attribution: deltas summed per batch before expansion equal each event's own figures summed,
and facts keep the world regions they were attributed with."""

from __future__ import annotations

import json
import random

import pytest
from common.regions import regions_of_country
from reporting.adapters.sqlite import stored_event
from reporting.contracts.inbound import EventState
from reporting.projections.event_facts import (
    EventDeltas,
    EventFacts,
    country_regions,
    decode_countries,
    event_facts,
    event_figures,
)

COUNTRIES = ["DE", "FR", "TH", "VN", "US", "BR", "KZ", "RU", "NG", "JP", "TW", "HK", "XK"]
ORGANIZERS = [{"kind": "province", "code": "440000"}, {"kind": "society", "code": "CMES"}, {"kind": "hq", "code": "HQ"}]
PROVINCES = ["110000", "440000", "440300", "660000", "710000", None]


def random_event(rng: random.Random) -> EventState:
    abroad = rng.random() < 0.2
    return EventState.model_validate(
        {
            "version": rng.randint(1, 9),
            "organizer": rng.choice(ORGANIZERS),
            "type": rng.choice(["forum", "conference", "training"]),
            "start_date": f"{rng.randint(2019, 2026)}-05-01",
            "host_country": "DE" if abroad else "CN",
            "host_province": None if abroad else rng.choice(PROVINCES),
            "participants": rng.choice([0, 5, 120]),
            "foreign_participants": rng.choice([0, 3]),
            "papers": rng.choice([0, 7]),
            "countries": rng.sample(COUNTRIES, rng.randint(0, 4)),
            "flagship": rng.random() < 0.3,
            "status": "cancelled" if rng.random() < 0.15 else "active",
        }
    )


def nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


@pytest.mark.parametrize("seed", range(5))
def test_summed_deltas_equal_the_contributions_as_specified(seed: int) -> None:
    rng = random.Random(seed)
    deltas = EventDeltas()
    want_metrics: dict = {}
    want_refs: dict = {}
    for _ in range(300):
        state = random_event(rng)
        sign = rng.choice([+1, +1, -1])
        deltas.add(event_facts(state), sign)
        one_metrics, one_refs = event_figures(state)
        for key, value in one_metrics.items():
            want_metrics[key] = want_metrics.get(key, 0) + sign * value
        for rkey, n in one_refs.items():
            want_refs[rkey] = want_refs.get(rkey, 0) + sign * n
    metrics: dict = {}
    refs: dict = {}
    deltas.expand(metrics, refs)
    assert nonzero(metrics) == nonzero(want_metrics)
    assert nonzero(refs) == nonzero(want_refs)
    assert nonzero(metrics)  # the comparison is not between two empty dicts


def test_an_event_added_and_subtracted_leaves_nothing() -> None:
    state = random_event(random.Random(7)).model_copy(update={"status": "active", "countries": ["TH", "DE"]})
    deltas = EventDeltas()
    deltas.add(event_facts(state), +1)
    deltas.add(event_facts(state), -1)
    metrics: dict = {}
    refs: dict = {}
    deltas.expand(metrics, refs)
    assert not nonzero(metrics) and not nonzero(refs)
    assert metrics  # but the regions were touched (the stream may notify them)


def test_countries_round_trip_through_their_stored_text_as_one_object() -> None:
    countries = country_regions(("DE", "TH", "XK"))
    assert json.loads(countries.text)["DE"] == sorted(regions_of_country("DE")) and "group:eu" in countries.text
    assert decode_countries(countries.text) is countries  # interned: equal sets are the same object
    assert dict(countries.pairs)["DE"] == tuple(sorted(regions_of_country("DE")))
    assert set(countries.world.regions) == set().union(*(regions_of_country(c) for c in ("DE", "TH", "XK")))
    assert not decode_countries("") and decode_countries("").text == ""


def test_facts_round_trip_through_their_stored_columns() -> None:
    rng = random.Random(3)
    for _ in range(50):
        facts = event_facts(random_event(rng))
        row = (facts.active, facts.year, facts.home, facts.countries.text, facts.body, facts.type)
        row += (facts.participants, facts.foreign_participants, facts.papers, facts.flagship)
        assert stored_event((4, *row)) == (4, facts)


def test_a_catalogue_change_makes_a_different_set_and_old_facts_keep_their_regions() -> None:
    """Stored facts keep the regions they counted in: the same country with other regions is another set."""
    current = country_regions(("DE",))
    older = decode_countries('{"DE":["m49:150"]}')
    assert older is not current and older.world.regions == ("m49:150",)
    stored = EventFacts(True, 2024, "cn:440000", older, "body:province:440000", "forum", 10, 0, 0, False)
    deltas = EventDeltas()
    deltas.add(stored, -1)
    metrics: dict = {}
    refs: dict = {}
    deltas.expand(metrics, refs)
    assert metrics[("m49:150", 2024, "events.count")] == -1
    assert refs[("events", "m49:150", 2024, "DE")] == -1
    assert not any(region == "group:eu" for region, _year, _metric in metrics)
