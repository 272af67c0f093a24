"""Contract test across services: every message the talent service documents in its checked-in
catalogue (services/talent/asyncapi.json) is valid against the producer's own schema, carries no personal
field, and is read by reporting's tolerant reader as the contract says: an upserted person counts in
`all`, their home province, their groups and posts; a removed one counts nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from common.testing.messages import cloud_event
from reporting.projections.attribution import person_contribution
from reporting.projections.changes import decode_change

CATALOGUE = Path(__file__).resolve().parents[2] / "services" / "talent" / "asyncapi.json"
MESSAGES = json.loads(CATALOGUE.read_text())["components"]["messages"]
PERSONAL = {"name", "name_en", "gender", "birth_year", "affiliation", "email", "orcid"}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_each_documented_talent_message_is_read_by_reporting(name: str) -> None:
    message = MESSAGES[name]
    schema = message["payload"]
    assert not PERSONAL & set(schema["properties"]["data"]["properties"])
    for example in schema["properties"]["data"]["examples"]:
        event = cloud_event(source="/talent", type=message["name"], subject=example["id"], data=example)
        if message["name"] == "exchange.person.removed" and not example["deleted"]:
            continue  # the upsert's example in the shared state model
        jsonschema.validate(event.model_dump(mode="json"), schema)
        change = decode_change(event)
        assert change is not None, f"reporting ignores {message['name']}"
        assert change.kind == "person" and change.id == example["id"] and change.version == example["version"]
        assert change.body == ("society", example["society"])
        values = {
            metric: value
            for _regions, _years, block in person_contribution(change.state).blocks  # type: ignore[arg-type]
            for metric, value in block.items()
        }
        if message["name"] == "exchange.person.removed" or example["deleted"]:
            assert change.state is None or values == {}  # an erased person leaves every figure
        else:
            regions = person_contribution(change.state).regions()  # type: ignore[arg-type]
            assert {"all", f"cn:{example['province']}"} <= regions
            assert values["talent.persons"] >= 1 and all(values[f"talent.by_group.{g}"] == 1 for g in example["groups"])
            assert sum(1 for p in example["posts"] if p["end_date"] is None) == values.get("talent.posts_open", 0)
