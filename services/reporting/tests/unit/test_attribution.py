"""The attribution rules as pure functions: home regions, world regions, years, removal."""

from __future__ import annotations

from datetime import date

import pytest
from common.kafka.consumer import InvalidMessage
from common.testing.messages import cloud_event
from pydantic import ValidationError
from reporting.contracts.inbound import EventState, PersonState
from reporting.projections.attribution import (
    Contribution,
    organization_contribution,
    person_contribution,
    province_region_of,
)
from reporting.projections.changes import decode_change, decode_message
from reporting.projections.event_facts import EventDeltas, event_facts, event_figures


def event(**overrides) -> EventState:
    data = {
        "version": 1,
        "organizer": {"kind": "province", "code": "440000"},
        "type": "forum",
        "start_date": "2025-04-01",
        "host_country": "CN",
        "host_province": "440000",
        "participants": 10,
        "foreign_participants": 3,
        "papers": 2,
        "countries": ["TH", "DE"],
        **overrides,
    }
    return EventState.model_validate(data)


def totals(contribution: Contribution) -> tuple[dict, dict]:
    metrics, refs = {}, {}
    contribution.add_to(metrics, refs, +1)
    return metrics, refs


def test_event_counts_once_in_all_once_at_home_and_in_every_region_of_its_countries():
    metrics, refs = event_figures(event())
    assert metrics[("all", 2025, "events.count")] == 1
    assert metrics[("all", 0, "events.count")] == 1
    assert metrics[("cn:440000", 2025, "events.count")] == 1
    assert metrics[("group:asean", 2025, "events.count")] == 1
    assert metrics[("m49:150", 2025, "events.count")] == 1
    assert ("cn:national", 2025, "events.count") not in metrics
    assert refs[("events", "group:asean", 2025, "TH")] == 1 and ("events", "group:asean", 2025, "DE") not in refs
    assert refs[("events", "all", 2025, "DE")] == 1
    assert metrics[("body:province:440000", 2025, "events.count")] == 1


@pytest.mark.parametrize(
    ("overrides", "home"),
    [
        ({"host_province": None, "host_country": "DE"}, "cn:440000"),
        ({"host_province": None, "type": "online", "organizer": {"kind": "society", "code": "CMES"}}, "cn:national"),
        ({"host_province": "510000", "organizer": {"kind": "hq", "code": "HQ"}}, "cn:510000"),
        ({"host_province": None, "organizer": {"kind": "province", "code": "440300"}}, "cn:440000"),
        ({"host_province": None, "organizer": {"kind": "province", "code": "660000"}}, "cn:650000"),
    ],
)
def test_exactly_one_home_region(overrides, home):
    metrics, _ = event_figures(event(**overrides))
    homes = {r for (r, y, m) in metrics if y == 2025 and m == "events.count" and (r.startswith("cn:"))}
    assert homes == {home}


def test_a_cancelled_event_contributes_nothing():
    assert event_figures(event(status="cancelled")) == ({}, {})


def test_subtracting_the_old_contribution_and_adding_the_new_one_nets_the_change():
    old, new = event(), event(host_province="320000", countries=["DE"])
    deltas = EventDeltas()
    deltas.add(event_facts(old), +1)
    deltas.add(event_facts(old), -1)
    deltas.add(event_facts(new), +1)
    metrics, refs = {}, {}
    deltas.expand(metrics, refs)
    assert ({k: v for k, v in metrics.items() if v}, {k: v for k, v in refs.items() if v}) == event_figures(new)
    stored = organization_contribution({"country": "DE"})
    assert Contribution.from_json(stored.to_json()) == stored


def test_posts_count_in_the_years_held_and_open_posts_from_their_start():
    person = PersonState.model_validate(
        {
            "version": 1,
            "groups": ["youth"],
            "country": "CN",
            "province": "310000",
            "posts": [
                {"role": "member", "organization_country": "FR", "start_date": "2019-05-01", "end_date": "2020-01-31"},
                {"role": "president", "start_date": "2022-01-01"},
            ],
        }
    )
    metrics, _ = totals(person_contribution(person))
    assert metrics[("cn:310000", 0, "talent.persons")] == 1
    assert metrics[("m49:150", 2019, "talent.posts")] == 1 and metrics[("m49:150", 2020, "talent.posts")] == 1
    assert ("m49:150", 2021, "talent.posts") not in metrics
    assert metrics[("all", 2022, "talent.posts_open")] == 1
    assert metrics[("all", 0, "talent.posts")] == 2


def test_a_role_and_a_group_talent_adds_later_are_counted_under_their_own_key():
    """A newer talent's role or group is counted (the report shows it after the vocabulary's keys), not
    dead-lettered: the same rule as a new event type."""
    person = PersonState.model_validate(
        {
            "version": 1,
            "groups": ["astronaut"],
            "country": "CN",
            "posts": [{"role": "honorary_advisor", "start_date": "2022-01-01"}],
        }
    )
    metrics, _ = totals(person_contribution(person))
    assert metrics[("all", 0, "talent.posts_by_role.honorary_advisor")] == 1
    assert metrics[("all", 2022, "talent.posts_open_by_role.honorary_advisor")] == 1
    assert metrics[("all", 0, "talent.by_group.astronaut")] == 1


def test_province_codes():
    assert province_region_of("440000") == "cn:440000"
    assert province_region_of("440300") == "cn:440000"
    assert province_region_of("999999") is None
    assert province_region_of(None) is None


def test_decode_rejects_what_cannot_be_attributed_and_skips_unknown_types():
    bad = cloud_event(source="/events", type="exchange.event.recorded", subject="x", data={"version": 1})
    with pytest.raises(InvalidMessage):
        decode_change(bad)
    other = cloud_event(source="/partners", type="exchange.membership.recorded", subject="m", data={"version": 1})
    assert decode_change(other) is None
    ok = cloud_event(
        source="/events",
        type="exchange.event.cancelled",
        subject="e1",
        data={
            "id": "e1",
            "version": 2,
            "organizer": {"kind": "province", "code": "440000"},
            "start_date": "2025-01-01",
        },
    )
    change = decode_change(ok)
    assert change is not None and change.kind == "event" and change.version == 2
    assert isinstance(change.state, EventState) and change.state.status == "cancelled"
    assert change.state.start_date == date(2025, 1, 1)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", ValidationError),
        (b'{"specversion": "1.0", "type": "exchange.event.recorded", "data": {}}', ValidationError),
        (
            b'{"id": "m1", "source": "/events", "type": "exchange.event.recorded", "subject": "e1",'
            b' "time": "2025-01-01T00:00:00Z", "data": {"version": -1}}',
            InvalidMessage,
        ),
        (
            b'{"id": "m1", "source": "/events", "type": "exchange.event.recorded", "subject": "e1",'
            b' "time": "2025-01-01T00:00:00Z", "data": {"version": 1,'
            b' "organizer": {"kind": "province", "code": "440000"}, "start_date": "2025-01-01", "countries": ["ZZ"]}}',
            InvalidMessage,
        ),
        (
            b'{"id": "", "source": "/events", "type": "exchange.event.recorded", "subject": "e1",'
            b' "time": "2025-01-01T00:00:00Z", "data": {"version": -1}}',
            ValidationError,
        ),
    ],
)
def test_a_bad_envelope_and_bad_data_are_told_apart(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        decode_message(raw)
    assert type(caught.value) is error  # InvalidMessage is not a ValidationError and vice versa


def test_a_valid_envelope_of_an_unknown_type_is_skipped_with_its_id() -> None:
    raw = cloud_event(source="/partners", type="exchange.membership.recorded", subject="m", data={}).to_bytes()
    decoded = decode_message(raw)
    assert decoded.value is None and decoded.message_id


@pytest.mark.parametrize(
    "type_", ["exchange.event.rescheduled", "exchange.agreement.suspended", "exchange.person.merged"]
)
def test_an_unknown_type_of_a_projected_aggregate_is_dead_lettered_not_skipped(type_: str) -> None:
    """Skipped, it would be recorded as processed and its figures lost until a rebuild; dead-lettered, it
    waits visibly (`reporting dlq list`) for a reporting that projects it (`reporting dlq replay`)."""
    raw = cloud_event(source="/events", type=type_, subject="e1", data={"id": "e1", "version": 2}).to_bytes()
    with pytest.raises(InvalidMessage, match="does not project"):
        decode_message(raw)
