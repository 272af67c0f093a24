"""Property-based tests from the service's own OpenAPI document with every check schemathesis has, the
stateful phase included (bounded): no 5xx, every response as documented, schema-valid requests accepted,
schema-invalid ones refused, unsupported methods 405 with `Allow`."""

from __future__ import annotations

from typing import Any

import schemathesis
from common.testing.contract import conformance_tests, every_check, hq_admin_headers, is_positive, load
from common.testing.plugin import TEST_SECRET
from events.config import EventsSettings
from events.entrypoints.app import create_app

MAX_EXAMPLES = 25

# A cancelled event stays readable (GET answers 200 with `"status": "cancelled"`, as the OpenAPI's DELETE
# says): cancelling is a change of state that reporting counts, not a removal, so "used after free" is
# the documented behaviour, not a defect.
CHECKS = every_check(excluding=["use_after_free"])

# The document is the app's own; building the app starts nothing (engines are built in the lifespan).
# 412: a well-formed `If-Match` naming a version the event is not at.
# 413: a batch over its documented `maxItems` is refused as too large.
schema = load(
    create_app(EventsSettings(environment="test", jwt_secret=TEST_SECRET)).openapi(),
    also_accepted=[412],
    also_refusing=[413],
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within_rules(event: Any) -> None:
    """The two rules between fields that the document states in words (JSON Schema cannot): the end is not
    before the start, and foreign participants are not more than participants."""
    if not isinstance(event, dict):
        return
    start, end = event.get("start_date"), event.get("end_date")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        event["start_date"], event["end_date"] = end, start
    participants, foreign = event.get("participants", 0), event.get("foreign_participants", 0)
    if _number(participants) and _number(foreign) and foreign > participants:
        event["participants"], event["foreign_participants"] = foreign, participants


# A change is valid or not together with the stored event (a new `end_date` before the stored start, a
# `type` no longer online for an event in China without a province …): the fields whose rules involve
# another field are changed only together with it, and those tied to the venue not at all.
_PAIRS = (("start_date", "end_date"), ("participants", "foreign_participants"))
_VENUE = ("type", "host_country", "host_province")


def _safe_change(change: Any) -> None:
    if not isinstance(change, dict):
        return
    for first, second in _PAIRS:
        if (first in change) != (second in change):
            change.pop(first, None)
            change.pop(second, None)
    for name in _VENUE:
        change.pop(name, None)
    _within_rules(change)


def prepare(case: schemathesis.Case) -> None:
    """Cases made valid for the rules between fields too. Applied to negative cases as well: a mutation
    may turn out valid after all (schemathesis then judges it as valid data), and swapping two values
    of one field type leaves an invalid one invalid."""
    body = case.body
    if case.method == "PATCH" and is_positive(case):
        _safe_change(body)
    elif case.method != "POST":
        return
    elif case.path == "/v1/events":
        _within_rules(body)
    elif isinstance(body, dict) and isinstance(body.get("events"), list):
        for event in body["events"]:
            _within_rules(event)


test_api_conforms_to_its_openapi, workflow, test_stateful_workflows_conform = conformance_tests(
    schema, headers=hq_admin_headers(), checks=CHECKS, max_examples=MAX_EXAMPLES, prepare=prepare
)
