"""Every schemathesis check, and the stateful phase, for a service's own OpenAPI document (bounded)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from common.auth import mint_token
from common.testing.plugin import TEST_SECRET

Check = Callable[..., Any]


def every_check(excluding: Iterable[str] = ()) -> list[Check]:
    """All the checks schemathesis has (`--checks all`) but the ones named: each exclusion is a documented,
    deliberate behaviour, given with its reason where the test names it."""
    load_all_checks()
    skipped = set(excluding)
    checks = [check for check in CHECKS.get_all() if check.__name__ not in skipped]
    unknown = skipped - {check.__name__ for check in CHECKS.get_all()}
    if unknown:
        raise ValueError(f"no such schemathesis checks: {sorted(unknown)}")
    return checks


def bounded(max_examples: int, *, stateful_steps: int | None = None) -> settings:
    """Hypothesis settings that keep one run short on a loaded 2-core machine (no deadline: a slow call is
    not a failure here; no example database: every run starts clean)."""
    extra: dict[str, Any] = {} if stateful_steps is None else {"stateful_step_count": stateful_steps}
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        **extra,
    )


def load(
    document: dict[str, Any],
    *,
    also_accepted: Iterable[int] = (),
    also_refusing: Iterable[int] = (),
    accepted_at: Mapping[str, Iterable[int]] | None = None,
) -> Any:
    """The schema of `document`. `also_accepted`: answers to schema-valid requests that are not a rejection
    of the data (412: an `If-Match` naming a version the event has left); `also_refusing`: documented
    refusals of schema-invalid requests besides the usual ones (413: a list over its `maxItems`);
    `accepted_at`: the same as `also_accepted` for one operation only (`"POST /v1/x/{id}/renew"`), where a
    documented rule depends on stored state that no schema can state (a new expiry after the stored one)."""
    accepted = [*POSITIVE_DEFAULT, *(str(status) for status in also_accepted)]
    refusing = [*NEGATIVE_DEFAULT, *(str(status) for status in also_refusing)]
    operations = [
        {
            "include-name": name,
            "checks": {"positive_data_acceptance": {"expected-statuses": [*accepted, *map(str, statuses)]}},
        }
        for name, statuses in (accepted_at or {}).items()
    ]
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"expected-statuses": accepted},
                "negative_data_rejection": {"expected-statuses": refusing},
            },
            "operations": operations,
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    unknown = {name for name in (accepted_at or {})} - {op.label for op in _operations(schema)}
    if unknown:
        raise ValueError(f"no such operations: {sorted(unknown)}")
    return schema


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis's own defaults, which the lists above extend.
POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NEGATIVE_DEFAULT = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]


def is_positive(case: schemathesis.Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def state_machine(
    schema: Any,
    base_url: Callable[[], str],
    headers: dict[str, str],
    checks: list[Check],
    prepare: Callable[[schemathesis.Case[Any]], None] = lambda _case: None,
) -> type[Any]:
    """The stateful phase: schemathesis chains operations through the document's links (a created event
    read, updated, cancelled, …) and validates every answer with `checks`. `prepare` adjusts a generated
    case before it is sent (rules between fields that JSON Schema cannot state)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case[Any]) -> None:
            prepare(case)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": base_url(), "headers": headers}

        def validate_response(self, response: Any, case: schemathesis.Case[Any], **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=checks,
                headers=headers,
                transport_kwargs={"base_url": base_url(), **kwargs},
                recorder=self.recorder,
            )

    return Workflow


def hq_admin_headers() -> dict[str, str]:
    """hq with `admin` may write for any body, so generated bodies get past authorisation to validation."""
    return {"Authorization": "Bearer " + mint_token(secret=TEST_SECRET, org_kind="hq", org_code="HQ", scopes="admin")}


def _as_generated(_case: schemathesis.Case[Any]) -> None:
    pass


def conformance_tests(
    schema: Any,
    *,
    headers: dict[str, str],
    checks: list[Check],
    max_examples: int,
    prepare: Callable[[schemathesis.Case[Any]], None] = _as_generated,
) -> tuple[Callable[..., None], Any, Callable[..., None]]:
    """The tests a service that writes runs on its own document, for its test module to take under these
    names: `test_api_conforms_to_its_openapi, workflow, test_stateful_workflows_conform = conformance_tests(…)`.
    The first calls every operation with generated data, valid and not (`max_examples` each); the second,
    through the `workflow` fixture, runs the stateful phase (10 runs of up to 6 steps). Both call the
    module's `live` fixture (a server with `url`), sending `headers`, checking `checks`, every case
    adjusted by `prepare` first."""

    @schema.parametrize()  # type: ignore[untyped-decorator]
    @bounded(max_examples)
    def test_api_conforms_to_its_openapi(case: schemathesis.Case[Any], live: Any) -> None:
        prepare(case)
        case.call_and_validate(base_url=live.url, headers=headers, checks=checks)

    @pytest.fixture(scope="module")
    def workflow(live: Any) -> type[Any]:
        return state_machine(schema, lambda: live.url, headers, checks, prepare)

    def test_stateful_workflows_conform(workflow: type[Any]) -> None:
        workflow.run(settings=bounded(10, stateful_steps=6))

    return test_api_conforms_to_its_openapi, workflow, test_stateful_workflows_conform
