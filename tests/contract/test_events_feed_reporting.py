"""Contract test across services: every message the events service documents in its checked-in
catalogue (services/events/asyncapi.json) is accepted by reporting's tolerant reader, attributed as the
contract says, and valid against the producer's own schema. Neither service imports the other here
beyond its public entry points: the catalogue is the producer's side, `decode_change` the consumer's."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from common.regions import regions_of_countries
from common.testing.messages import cloud_event
from reporting.projections.attribution import event_home_region
from reporting.projections.changes import decode_change
from reporting.projections.event_facts import event_figures

CATALOGUE = Path(__file__).resolve().parents[2] / "services" / "events" / "asyncapi.json"
MESSAGES = json.loads(CATALOGUE.read_text())["components"]["messages"]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_documented_event_is_read_by_reporting(name):
    message = MESSAGES[name]
    schema = message["payload"]
    for example in schema["properties"]["data"]["examples"]:
        event = cloud_event(source="/events", type=message["name"], subject=example["id"], data=example)
        jsonschema.validate(event.model_dump(mode="json"), schema)  # the producer's own schema
        change = decode_change(event)
        assert change is not None, f"reporting ignores {message['name']}"
        assert change.kind == "event" and change.id == example["id"] and change.version == example["version"]
        # Attribution per the contract: `all`, one home region, every world region of its countries.
        home = event_home_region(change.state)
        expected_home = f"cn:{example['host_province']}" if example.get("host_province") else None
        assert expected_home is None or home == expected_home
        metrics, refs = event_figures(change.state)
        regions = {region for region, _year, _metric in metrics} | {region for _kind, region, _y, _c in refs}
        if message["name"] == "exchange.event.cancelled":
            assert regions == set()  # a cancelled event leaves every metric, whatever its data says
        else:
            assert {"all", home} <= regions
            assert regions_of_countries(example["countries"]) <= regions
