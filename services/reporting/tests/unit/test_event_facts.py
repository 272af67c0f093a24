"""The events' fast path computes exactly what `event_contribution` (the rules as written) specifies."""

from __future__ import annotations

import random

import pytest
from reporting.contracts.inbound import EventState
from reporting.projections.attribution import event_contribution
from reporting.projections.event_facts import (
    EventDeltas,
    country_regions,
    decode_countries,
    encode_countries,
    event_facts,
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
        event_contribution(state).add_to(want_metrics, want_refs, sign)
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


def test_countries_round_trip_through_their_stored_text() -> None:
    countries = country_regions(("DE", "TH", "XK"))
    text = encode_countries(countries)
    assert decode_countries(text) == countries
    assert decode_countries("") == ()
    assert "DE=" in text and "group:eu" in text
