"""Contract test across services: the vocabularies each producer publishes beside its AsyncAPI (event
types; talent groups and post roles) are the ones reporting's checked copies hold, so a new event type
either appears in every report (the copy updated) or fails here — never silently dropped."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIES = ROOT / "services" / "reporting" / "src" / "reporting" / "contracts" / "vocabularies"
PUBLISHED = {
    "events": ROOT / "services" / "events" / "src" / "events" / "contracts" / "vocabulary.json",
    "talent": ROOT / "services" / "talent" / "src" / "talent" / "contracts" / "vocabulary.json",
}
ASYNCAPI = json.loads((ROOT / "services" / "events" / "asyncapi.json").read_text())
# Partners' kinds and statuses label no figure of reporting (no copy is kept); it only compares statuses.
PARTNERS = ROOT / "services" / "partners" / "src" / "partners" / "contracts" / "vocabulary.json"


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("producer", sorted(PUBLISHED))
def test_reporting_holds_the_producers_vocabulary(producer):
    assert read(COPIES / f"{producer}.json") == read(PUBLISHED[producer]), (
        f"services/reporting/src/reporting/contracts/vocabularies/{producer}.json differs from what {producer} "
        "publishes: copy the producer's file (a new key then appears in every report)"
    )


def test_the_events_vocabulary_is_every_type_its_asyncapi_accepts():
    published = set(read(PUBLISHED["events"])["event_types"])
    for message in ASYNCAPI["components"]["messages"].values():
        accepted = message["payload"]["properties"]["data"]["properties"]["type"]["enum"]
        assert set(accepted) == published, f"{message['name']}: types {set(accepted) ^ published} lack a label"


@pytest.mark.parametrize("producer", sorted(PUBLISHED))
def test_every_key_has_both_labels(producer):
    for name, entries in read(PUBLISHED[producer]).items():
        if isinstance(entries, dict):
            for key, labels in entries.items():
                assert labels.get("zh") and labels.get("en"), f"{producer} {name}.{key}"


def test_every_vocabulary_key_is_a_column_of_the_annual_report_and_a_key_of_the_figures():
    from reporting.api.reports import columns
    from reporting.read.queries import metrics_object

    obj = metrics_object("all", 2025, datetime.now(UTC), None)
    keys = {key for key, _zh, _en in columns()}
    for name, field, prefix in (
        ("events", "event_types", "events.by_type"),
        ("talent", "groups", "talent.by_group"),
        ("talent", "roles", "talent.posts_by_role"),
    ):
        section, breakdown = prefix.split(".")
        for key in read(PUBLISHED[name])[field]:
            assert f"{prefix}.{key}" in keys
            assert key in obj[section][breakdown]


def test_the_partners_statuses_reporting_compares_are_published():
    published = read(PARTNERS)
    assert "active" in published["agreement_statuses"]  # read/queries.py: agreements in force
    assert "merged" in published["organization_statuses"]  # projections/attribution.py: counts nowhere
    for entries in (v for v in published.values() if isinstance(v, dict)):
        assert all(labels.get("zh") and labels.get("en") for labels in entries.values())


@pytest.mark.parametrize(
    ("model", "path", "producer", "field"),
    [
        ("EventState", ("properties", "type"), "events", "event_types"),
        ("PersonState", ("properties", "groups", "items"), "talent", "groups"),
        ("Post", ("properties", "role"), "talent", "roles"),
    ],
)
def test_reporting_inbound_accepts_every_vocabulary_key_and_a_newer_one(model, path, producer, field):
    """Reporting's inbound models take these keys as slugs, never as a fixed list of their own: a list would
    dead-letter a key the producer adds (the report shows it after the vocabulary's keys instead)."""
    from reporting.contracts import inbound

    schema = getattr(inbound, model).model_json_schema()
    node = schema
    for step in path:
        node = node[step]
    while "$ref" in node or "allOf" in node:
        ref = node["$ref"] if "$ref" in node else node["allOf"][0]["$ref"]
        node = schema["$defs"][ref.rsplit("/", 1)[-1]]
    assert "enum" not in node and "const" not in node, f"{model} lists {producer}'s {field} itself"
    for key in [*read(PUBLISHED[producer])[field], "added_later"]:
        assert re.fullmatch(node["pattern"], key), f"{model} refuses {producer}'s {field} key {key!r}"
