"""The system tests' checker (common.testing.checker) on synthetic histories: a clean one passes, and each
kind of anomaly — a write lost on the topic or in the service, a message counted twice, one never
counted, versions going backwards, a key on two partitions — is reported, and only that one; for talent's
people as for events and partners, and in a year's figures as in those of all years."""

from __future__ import annotations

from datetime import date
from typing import Any

from common.testing.checker import Message, Report, Write, check, recompute, years_of

TODAY = date(2026, 6, 1)
REGIONS = ["all", "cn:440000", "cn:310000", "cn:national", "m49:150", "m49:155", "group:eu", "m49:142", "m49:019"]


def event(key: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "id": key,
        "version": version,
        "status": "active",
        "type": "conference",
        "start_date": "2026-03-01",
        "host_province": "440000",
        "organizer": {"kind": "province", "code": "440000"},
        "participants": 100,
        "foreign_participants": 10,
        "papers": 5,
        "countries": ["DE"],
        **fields,
    }


def history() -> dict[str, Any]:
    """Two events (one updated, one abroad), one cancelled event, an organization in France, an
    international one, an agreement with both signed by Shanghai and expiring within 90 days."""
    events = {
        "e1": event("e1", 2, participants=150),
        "e2": event("e2", host_province=None, host_country="JP", countries=["JP"], type="forum"),
        "e3": event("e3", 2, status="cancelled"),
    }
    organizations = {
        "o1": {"id": "o1", "version": 1, "country": "FR", "status": "active"},
        "o2": {"id": "o2", "version": 1, "country": None, "status": "active"},
    }
    agreements = {
        "a1": {
            "id": "a1",
            "version": 1,
            "status": "active",
            "signed_on": "2025-01-01",
            "expires_on": "2026-07-01",
            "partner_org_ids": ["o1", "o2"],
            "signed_by": {"kind": "province", "code": "310000"},
        }
    }
    acknowledged = [
        Write("event", "e1", 1),
        Write("event", "e1", 2),
        Write("event", "e2", 1),
        Write("event", "e3", 1),
        Write("event", "e3", 2),
        Write("organization", "o1", 1),
        Write("organization", "o2", 1),
        Write("agreement", "a1", 1),
    ]
    messages = {
        "event": [
            Message("e1", 1, "exchange.event.recorded", 0, 0),
            Message("e2", 1, "exchange.event.recorded", 1, 0),
            Message("e1", 2, "exchange.event.updated", 0, 1),
            Message("e3", 1, "exchange.event.recorded", 2, 0),
            Message("e3", 2, "exchange.event.cancelled", 2, 1),
        ],
        "organization": [
            Message("o1", 1, "exchange.organization.registered", 0, 0),
            Message("o2", 1, "exchange.organization.registered", 1, 0),
        ],
        "agreement": [
            Message("a1", 1, "exchange.agreement.signed", 2, 0),
            Message("a1", 1, "exchange.agreement.expiring", 2, 1),  # a notice: the same version again
        ],
    }
    persons = {
        # in Guangdong; a closed post (2021-2023) at an organization seated in France, an open one since 2025
        "p1": person("p1", 2, province="440000", groups=["engineer", "youth"], reserve=True, posts=[
            post("executive_board", "FR", "2021-03-01", "2023-06-30"), post("president", None, "2025-01-01")]),
        # abroad (Brazil): cn:national and South America
        "p2": person("p2", country="BR", province=None, groups=["overseas_expert"]),
        "p3": {"id": "p3", "version": 2, "society": "CMES", "deleted": True, "groups": [], "posts": []},  # erased
    }  # fmt: skip
    acknowledged += [
        Write("person", "p1", 1),
        Write("person", "p1", 2),
        Write("person", "p2", 1),
        Write("person", "p3", 1),
        Write("person", "p3", 2),
    ]
    messages["person"] = [
        Message("p1", 1, "exchange.person.upserted", 0, 0),
        Message("p3", 1, "exchange.person.upserted", 0, 1),
        Message("p1", 2, "exchange.person.upserted", 0, 2),
        Message("p2", 1, "exchange.person.upserted", 1, 0),
        Message("p3", 2, "exchange.person.removed", 0, 3),
    ]
    states = {"event": events, "organization": organizations, "agreement": agreements, "person": persons}
    figures = figures_from(recompute(states, today=TODAY), REGIONS)
    by_year = {y: figures_from(recompute(states, today=TODAY, year=y), REGIONS) for y in years_of(states, today=TODAY)}
    return {
        "acknowledged": acknowledged,
        "messages": messages,
        "states": states,
        "figures": figures,
        "figures_by_year": by_year,
    }


def person(key: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "id": key,
        "version": version,
        "society": "CMES",
        "deleted": False,
        "groups": [],
        "country": "CN",
        "province": "440000",
        "reserve": False,
        "posts": [],
        **fields,
    }


def post(role: str, seat: str | None, start: str, end: str | None = None) -> dict[str, Any]:
    return {"organization": "IO", "organization_country": seat, "role": role, "start_date": start, "end_date": end}


def figures_from(tally: Any, regions: list[str]) -> dict[str, dict[str, Any]]:
    """Region objects shaped as reporting answers them, from a tally."""
    out: dict[str, dict[str, Any]] = {}
    for region in regions:
        obj: dict[str, Any] = {
            "region": region,
            "events": {"by_type": {}},
            "partners": {},
            "talent": {"by_group": {}, "posts_by_role": {}},
        }
        for metric, value in tally.values.get(region, {}).items():
            section, name, *key = metric.split(".")
            if key:
                obj[section][name][key[0]] = value
            else:
                obj[section][name] = value
        for section in ("events", "partners"):
            obj[section]["countries"] = tally.figure(region, f"{section}.countries")
        out[region] = obj
    return out


def run(h: dict[str, Any]) -> Report:
    return check(**h, regions=REGIONS, today=TODAY)


def test_a_clean_history_passes_and_the_rules_are_the_contracts():
    h = history()
    report = run(h)
    assert report.ok, str(report)
    assert report.topic_copies == 0  # the expiring notice is a message of its own type
    f = h["figures"]
    assert f["all"]["events"]["count"] == 2 and f["all"]["events"]["participants"] == 250
    assert f["cn:440000"]["events"]["count"] == 2  # hosted in Guangdong, and organized by it when abroad
    assert f["m49:150"]["events"]["count"] == 1 and f["m49:142"]["events"]["count"] == 1
    assert f["all"]["events"]["countries"] == 2 and f["cn:440000"]["events"]["countries"] == 2
    assert f["all"]["partners"]["organizations"] == 2 and f["m49:155"]["partners"]["organizations"] == 1
    assert f["cn:310000"]["partners"]["agreements_signed"] == 1
    assert f["group:eu"]["partners"]["agreements_expiring_90d"] == 1
    assert f["cn:national"]["partners"].get("agreements_signed", 0) == 0
    assert "events" not in f["cn:310000"] or f["cn:310000"]["events"].get("count", 0) == 0
    # talent: p1 in Guangdong, p2 abroad (cn:national and the Americas), p3 erased and nowhere
    assert f["all"]["talent"]["persons"] == 2 and f["all"]["talent"]["reserve"] == 1
    assert f["cn:440000"]["talent"]["persons"] == 1 and f["cn:national"]["talent"]["persons"] == 1
    assert f["m49:019"]["talent"]["persons"] == 1 and f["m49:019"]["talent"]["by_group"]["overseas_expert"] == 1
    assert f["all"]["talent"]["posts"] == 2 and f["cn:440000"]["talent"]["posts"] == 2
    assert f["m49:150"]["talent"]["posts"] == 1 and f["m49:150"]["talent"].get("persons", 0) == 0
    # the years: a closed post in each year it was held, an open one from its start on, people in every year
    y = h["figures_by_year"]
    assert sorted(y) == [2021, 2022, 2023, 2025, 2026]  # 2024: nothing starts, is signed or held in it
    assert [y[year]["all"]["talent"].get("posts", 0) for year in sorted(y)] == [1, 1, 1, 1, 1]
    assert y[2022]["m49:150"]["talent"]["posts"] == 1 and y[2025]["m49:150"]["talent"].get("posts", 0) == 0
    assert [y[year]["all"]["talent"]["persons"] for year in sorted(y)] == [2] * 5
    assert y[2026]["all"]["events"]["count"] == 2 and y[2025]["all"]["events"].get("count", 0) == 0
    assert y[2025]["all"]["partners"]["agreements_signed"] == 1 and y[2025]["all"]["partners"]["countries"] == 1
    assert y[2026]["all"]["partners"].get("agreements_signed", 0) == 0
    assert y[2026]["all"]["partners"]["agreements_active"] == 1  # signed before, in force
    assert y[2023]["all"]["partners"].get("agreements_active", 0) == 0  # not yet signed


def test_a_write_missing_from_the_topic_is_lost():
    h = history()
    h["messages"]["event"] = [m for m in h["messages"]["event"] if (m.key, m.version) != ("e1", 2)]
    report = run(h)
    assert report.lost == ["event e1 version 2: not on the topic"]
    assert not (report.counted_twice or report.not_counted or report.order_violations)


def test_a_write_the_service_forgot_is_lost():
    h = history()
    h["states"]["event"]["e1"] = event("e1", 1)
    h["figures"] = figures_from(recompute(h["states"], today=TODAY), REGIONS)
    report = run(h)
    assert report.lost == ["event e1 version 2: not in the service's list"]


def test_a_message_applied_twice_is_counted_twice():
    h = history()
    h["figures"]["cn:440000"]["events"]["count"] += 1
    h["figures"]["cn:440000"]["events"]["participants"] += 150
    report = run(h)
    assert {(m.region, m.metric) for m in report.counted_twice} == {
        ("cn:440000", "events.count"),
        ("cn:440000", "events.participants"),
    }
    assert not (report.lost or report.not_counted or report.order_violations)


def test_a_change_never_applied_is_not_counted():
    h = history()
    h["figures"]["all"]["events"]["participants"] = 200  # e1's update (100 → 150) missing
    del h["figures"]["m49:142"]  # a region reporting left out counts as zero
    report = run(h)
    assert {(m.region, m.metric, m.expected, m.actual) for m in report.not_counted} >= {
        ("all", "events.participants", 250, 200),
        ("m49:142", "events.count", 1, 0),
    }
    assert not report.counted_twice


def test_flagship_events_and_agreements_left_out_are_not_counted():
    h = history()
    h["states"]["event"]["e1"]["flagship"] = True
    h["states"]["agreement"]["a1"]["flagship"] = True
    report = run(h)  # the figures were recomputed before: reporting counted neither flagship
    assert {(m.region, m.metric, m.year) for m in report.not_counted} >= {
        ("all", "events.flagship", None),
        ("cn:440000", "events.flagship", 2026),
        ("all", "partners.flagship_agreements", None),
        ("cn:310000", "partners.flagship_agreements", 2025),
    }
    assert not report.counted_twice


def test_a_cancelled_event_still_counted_is_reported():
    h = history()
    h["figures"]["all"]["events"]["count"] = 3
    assert [(m.region, m.metric) for m in run(h).counted_twice] == [("all", "events.count")]


def test_versions_going_backwards_and_a_key_on_two_partitions_are_order_violations():
    h = history()
    h["messages"]["event"].append(Message("e1", 1, "exchange.event.recorded", 0, 2))  # old version after v2
    h["messages"]["organization"].append(Message("o1", 1, "exchange.organization.registered", 4, 0))
    report = run(h)
    assert len(report.order_violations) == 2, report.order_violations
    assert "e1 version 1 after 2" in report.order_violations[0]
    assert "o1 on partitions 0 and 4" in report.order_violations[1]
    assert report.topic_copies == 2
    assert not report.lost


def test_a_plain_copy_on_the_topic_is_no_anomaly():
    h = history()
    h["messages"]["event"].append(Message("e2", 1, "exchange.event.recorded", 1, 1))
    report = run(h)
    assert report.ok and report.topic_copies == 1


def test_an_agreement_past_its_expiry_is_neither_active_nor_expiring():
    h = history()
    report = check(**h, regions=REGIONS, today=date(2026, 7, 2))
    assert {(m.region, m.metric) for m in report.counted_twice} >= {
        ("all", "partners.agreements_active"),
        ("all", "partners.agreements_expiring_90d"),
    }


def test_a_talent_write_missing_from_the_topic_or_the_service_is_lost():
    h = history()
    h["messages"]["person"] = [m for m in h["messages"]["person"] if (m.key, m.version) != ("p3", 2)]
    report = run(h)
    assert report.lost == ["person p3 version 2: not on the topic"]
    assert not (report.counted_twice or report.not_counted or report.order_violations)

    h = history()
    del h["states"]["person"]["p3"]  # the service forgot the erasure it acknowledged
    h["figures"] = figures_from(recompute(h["states"], today=TODAY), REGIONS)
    assert run(h).lost == [f"person p3 version {v}: not in the service's list" for v in (1, 2)]


def test_a_sync_applied_twice_counts_the_person_twice():
    h = history()
    for figures in (h["figures"], *h["figures_by_year"].values()):
        figures["cn:440000"]["talent"]["persons"] += 1
        figures["cn:440000"]["talent"]["by_group"]["engineer"] += 1
    report = run(h)
    assert {(m.region, m.metric) for m in report.counted_twice} == {
        ("cn:440000", "talent.persons"),
        ("cn:440000", "talent.by_group.engineer"),
    }
    assert {m.year for m in report.counted_twice} == {None, 2021, 2022, 2023, 2025, 2026}
    assert not (report.lost or report.not_counted or report.order_violations)


def test_an_erased_person_still_counted_and_a_post_never_counted_are_reported():
    h = history()
    h["figures"]["all"]["talent"]["persons"] = 3  # p3's removal not applied
    h["figures"]["m49:150"]["talent"]["posts"] = 0  # p1's post in France not applied
    report = run(h)
    assert [(m.region, m.metric, m.year) for m in report.counted_twice] == [("all", "talent.persons", None)]
    assert [(m.region, m.metric, m.year) for m in report.not_counted] == [("m49:150", "talent.posts", None)]


def test_a_wrong_figure_of_one_year_is_reported_with_its_year():
    h = history()
    y = h["figures_by_year"]
    y[2025]["m49:150"]["talent"]["posts"] = 1  # the closed post counted after its end
    y[2026]["cn:440000"]["events"]["count"] = 1  # one of the year's events missing, all years right
    report = run(h)
    assert [(m.region, m.metric, m.year, m.expected, m.actual) for m in report.counted_twice] == [
        ("m49:150", "talent.posts", 2025, 0, 1)
    ]
    assert [(m.region, m.metric, m.year, m.expected, m.actual) for m in report.not_counted] == [
        ("cn:440000", "events.count", 2026, 2, 1)
    ]
    assert report.years_checked == 5 and not report.lost


def test_a_year_reporting_left_out_counts_as_zero():
    h = history()
    del h["figures_by_year"][2022]
    report = run(h)
    assert ("all", "talent.posts", 2022) in {(m.region, m.metric, m.year) for m in report.not_counted}
    assert ("all", "talent.persons", 2022) in {(m.region, m.metric, m.year) for m in report.not_counted}


def test_a_persons_versions_going_backwards_are_an_order_violation():
    h = history()
    h["messages"]["person"].append(Message("p1", 1, "exchange.person.upserted", 0, 9))
    report = run(h)
    assert report.order_violations == ["person p1 version 1 after 2 (partition 0, offset 9)"]
    assert report.topic_copies == 1 and not report.lost
