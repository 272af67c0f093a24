"""Contract test across services: every message the partners service documents in its checked-in
catalogue (services/partners/asyncapi.json) is valid against the producer's own schema and read by
reporting as the contract says: organizations and agreements as states (a renewal notice too, at its
version), a merged organization as gone, an expired or terminated agreement out of the active ones,
memberships skipped (reporting does not project them)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from common.testing.messages import cloud_event
from reporting.projections.attribution import agreement_facts, organization_facts
from reporting.projections.changes import decode_change

CATALOGUE = Path(__file__).resolve().parents[2] / "services" / "partners" / "asyncapi.json"
MESSAGES = json.loads(CATALOGUE.read_text())["components"]["messages"]


def _examples():
    for name in sorted(MESSAGES):
        message = MESSAGES[name]
        for example in message["payload"]["properties"]["data"]["examples"]:
            yield pytest.param(message, example, id=message["name"])


def test_every_partners_message_type_has_an_example():
    documented = {m["name"] for m in MESSAGES.values()}
    assert documented == {
        "exchange.organization.registered",
        "exchange.organization.updated",
        "exchange.organization.merged",
        "exchange.agreement.signed",
        "exchange.agreement.updated",
        "exchange.agreement.renewed",
        "exchange.agreement.expiring",
        "exchange.agreement.expired",
        "exchange.agreement.terminated",
        "exchange.membership.recorded",
        "exchange.membership.ended",
    }


@pytest.mark.parametrize(("message", "example"), list(_examples()))
def test_each_partners_message_is_read_by_reporting(message, example):
    event = cloud_event(source="/partners", type=message["name"], subject=example["id"], data=example)
    jsonschema.validate(event.model_dump(mode="json"), message["payload"])  # the producer's own schema
    change = decode_change(event)
    kind = message["name"].split(".")[1]
    if kind == "membership":
        assert change is None
        return
    assert change is not None, f"reporting ignores {message['name']}"
    assert change.kind == kind and change.id == example["id"] and change.version == example["version"]
    if kind == "organization":
        facts = organization_facts(change.state)  # type: ignore[arg-type]
        if example["status"] == "merged":
            assert facts is None  # a merged organization counts nowhere
        else:
            assert facts == {"country": example["country"]}
        return
    facts = agreement_facts(change.state)  # type: ignore[arg-type]
    assert facts["signer"] == [example["signed_by"]["kind"], example["signed_by"]["code"]]
    assert change.body == (example["signed_by"]["kind"], example["signed_by"]["code"])
    assert facts["status"] == example["status"]  # `expired`/`terminated` leave agreements_active
    assert facts["expires_on"] == example["expires_on"]


def test_an_agreement_without_signed_by_is_refused():
    (example,) = MESSAGES["agreement_signed"]["payload"]["properties"]["data"]["examples"]
    data = {k: v for k, v in example.items() if k != "signed_by"} | {"organizer": example["signed_by"]}
    event = cloud_event(source="/partners", type="exchange.agreement.signed", subject=example["id"], data=data)
    with pytest.raises(Exception, match="data"):
        decode_change(event)
