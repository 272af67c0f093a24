"""The vocabulary partners publishes (contracts/vocabulary.json, `x-vocabulary` of its AsyncAPI document)
is exactly the code's kinds and statuses, in order, each with a Chinese and an English label: a value
added to the domain fails here until it is labelled, so the published file cannot drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from partners.contracts import asyncapi
from partners.contracts.v1 import VOCABULARY, VOCABULARY_FILE
from partners.domain.agreement import AGREEMENT_KINDS, AGREEMENT_STATUSES, NOTICE_DAYS
from partners.domain.membership import MEMBERSHIP_STATUSES
from partners.domain.organization import ORGANIZATION_KINDS, ORGANIZATION_STATUSES

SERVICE_DIR = Path(__file__).resolve().parents[2]
DOMAIN = {
    "organization_kinds": ORGANIZATION_KINDS,
    "organization_statuses": ORGANIZATION_STATUSES,
    "agreement_kinds": AGREEMENT_KINDS,
    "agreement_statuses": AGREEMENT_STATUSES,
    "agreement_notice_days": tuple(str(days) for days in NOTICE_DAYS),
    "membership_statuses": MEMBERSHIP_STATUSES,
}


def test_the_vocabulary_is_the_domains_values_in_order() -> None:
    assert {name: tuple(section) for name, section in VOCABULARY.items()} == DOMAIN


def test_every_value_has_a_chinese_and_an_english_label() -> None:
    for name, section in VOCABULARY.items():
        for key, labels in section.items():
            assert set(labels) == {"zh", "en"}, f"{name}.{key}"
            assert labels["en"].strip() and any("\u4e00" <= ch <= "\u9fff" for ch in labels["zh"]), f"{name}.{key}"


def test_the_file_says_what_it_is_and_the_asyncapi_document_carries_it() -> None:
    published = json.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))
    assert (published["service"], published["topic"]) == ("partners", "exchange.partners.v1")
    assert asyncapi()["info"]["x-vocabulary"] == VOCABULARY
    checked_in = json.loads((SERVICE_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    assert checked_in == asyncapi(), "regenerate: uv run partners asyncapi > services/partners/asyncapi.json"


def _accepted(schema: dict[str, Any]) -> set[str]:
    """The values a property's schema accepts (`enum`, `const`, or either inside `anyOf`)."""
    if "enum" in schema:
        return set(schema["enum"])
    if "const" in schema:
        return {schema["const"]}
    return {value for option in schema.get("anyOf", []) for value in _accepted(option)}


def test_the_messages_accept_exactly_the_vocabularys_kinds_and_statuses() -> None:
    accepted: dict[str, set[str]] = {}
    for message in asyncapi()["components"]["messages"].values():
        aggregate = message["name"].split(".")[1]  # exchange.<aggregate>.<what happened>
        properties = message["payload"]["properties"]["data"]["properties"]
        for field in ("kind", "status"):
            if field in properties:
                accepted.setdefault(f"{aggregate}_{field}", set()).update(_accepted(properties[field]))
    assert accepted == {
        "organization_kind": set(VOCABULARY["organization_kinds"]),
        "organization_status": set(VOCABULARY["organization_statuses"]),
        "agreement_kind": set(VOCABULARY["agreement_kinds"]),
        "agreement_status": set(VOCABULARY["agreement_statuses"]),
        "membership_status": set(VOCABULARY["membership_statuses"]),
    }
