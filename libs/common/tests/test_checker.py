"""The system tests' checker (common.testing.checker) on synthetic histories: a clean one passes, and each
kind of anomaly — a write lost on the topic or in the service, a message counted twice, one never
counted, versions going backwards, a key on two partitions — is reported, and only that one."""

from __future__ import annotations

from datetime import date
from typing import Any

from common.testing.checker import Message, Report, Write, check, recompute

TODAY = date(2026, 6, 1)
REGIONS = ["all", "cn:440000", "cn:310000", "cn:national", "m49:150", "m49:155", "group:eu", "m49:142"]


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
    states = {"event": events, "organization": organizations, "agreement": agreements}
    figures = figures_from(recompute(states, today=TODAY), REGIONS)
    return {"acknowledged": acknowledged, "messages": messages, "states": states, "figures": figures}


def figures_from(tally: Any, regions: list[str]) -> dict[str, dict[str, Any]]:
    """Region objects shaped as reporting answers them, from a tally."""
    out: dict[str, dict[str, Any]] = {}
    for region in regions:
        values = tally.values.get(region, {})
        obj: dict[str, Any] = {"region": region, "events": {"by_type": {}}, "partners": {}}
        for metric, value in values.items():
            section, _, name = metric.partition(".")
            if name.startswith("by_type."):
                obj[section]["by_type"][name.removeprefix("by_type.")] = value
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
