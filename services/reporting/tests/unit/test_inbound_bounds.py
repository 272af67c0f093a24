"""Every inbound field is bounded as the contract says, and never past the column that stores it: a
message out of bounds fails at decode (the dead-letter topic), not in the transaction that applies it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from common.kafka.consumer import InvalidMessage
from pydantic import ValidationError
from reporting.projections.changes import Change, decode_message
from support import agreement_message, event_data, event_message, organization_message, person_message

TOO_BIG = 10**12 + 1


def _agreement(**data: Any) -> bytes:
    message = agreement_message(str(uuid.uuid4()), [str(uuid.uuid4())])
    return message.model_copy(update={"data": {**message.data, **data}}).to_bytes()


def _event(**data: Any) -> bytes:
    return event_message({**event_data(), **data}).to_bytes()


def _person(**data: Any) -> bytes:
    message = person_message(str(uuid.uuid4()))
    return message.model_copy(update={"data": {**message.data, **data}}).to_bytes()


def _organization(**data: Any) -> bytes:
    message = organization_message(str(uuid.uuid4()), "DE")
    return message.model_copy(update={"data": {**message.data, **data}}).to_bytes()


POST = {"organization": "X", "organization_country": "DE", "role": "member", "start_date": "2022-01-01"}

OUT_OF_BOUNDS: dict[str, Callable[[], bytes]] = {
    "agreement status of 17 characters (String(16))": lambda: _agreement(status="s" * 17),
    "agreement version above 10^12": lambda: _agreement(version=TOO_BIG),
    "agreement with 251 partners": lambda: _agreement(partner_org_ids=[str(uuid.uuid4()) for _ in range(251)]),
    "partner id of 65 characters": lambda: _agreement(partner_org_ids=["o" * 65]),
    "partner id holding NUL": lambda: _agreement(partner_org_ids=["a\x00b"]),
    "signer code of 33 characters": lambda: _agreement(signed_by={"kind": "society", "code": "C" * 33}),
    "event participants above 10^12": lambda: _event(participants=TOO_BIG),
    "event papers below 0": lambda: _event(papers=-1),
    "event with 251 countries": lambda: _event(countries=["DE"] * 251),
    "event status of 33 characters": lambda: _event(status="x" * 33),
    "event id of 65 characters": lambda: _event(id="e" * 65),
    "organizer code of 33 characters": lambda: _event(organizer={"kind": "province", "code": "4" * 33}),
    "society code of 33 characters": lambda: _person(society="S" * 33),
    "person with 51 posts": lambda: _person(posts=[POST] * 51),
    "post organization of 301 characters": lambda: _person(posts=[{**POST, "organization": "o" * 301}]),
    "person with 251 groups": lambda: _person(groups=["youth"] * 251),
    "organization kind of 33 characters": lambda: _organization(kind="k" * 33),
    "organization version above 10^12": lambda: _organization(version=TOO_BIG),
    "message of 256 KiB": lambda: _event(title="t" * 256 * 1024),
}


@pytest.mark.parametrize("build", OUT_OF_BOUNDS.values(), ids=OUT_OF_BOUNDS.keys())
def test_out_of_bounds_fails_at_decode(build: Callable[[], bytes]) -> None:
    with pytest.raises((InvalidMessage, ValidationError)):
        decode_message(build())


def test_the_bounds_themselves_are_accepted() -> None:
    at_bounds = [
        _agreement(status="s" * 16, version=10**12, partner_org_ids=["o" * 64] * 250),
        _event(participants=10**12, foreign_participants=10**12, papers=10**12, countries=["DE"] * 250, id="e" * 64),
        _person(society="S" * 32, posts=[{**POST, "organization": "o" * 300}] * 50),
        _organization(kind="k" * 32, version=0),
    ]
    for raw in at_bounds:
        assert isinstance(decode_message(raw).value, Change), json.loads(raw)["type"]
