"""Contract test: the system checker (common.testing.checker) recomputes every figure reporting's metrics
catalogue publishes, each breakdown with the keys of the producers' vocabularies, so a new metric or a new
vocabulary key cannot go unchecked under faults."""

from __future__ import annotations

from common.testing import checker
from reporting.catalogue import METRICS, keys_of


def catalogue_keys() -> set[str]:
    keys: set[str] = set()
    for m in METRICS:
        keys |= {f"{m.key}.{k}" for k in keys_of(m.vocabulary)} if m.vocabulary else {m.key}
    return keys


def test_the_checker_checks_every_figure_of_the_catalogue() -> None:
    checked = {metric for metrics in checker.METRICS.values() for metric in metrics}
    assert checked == catalogue_keys(), (
        f"unchecked: {sorted(catalogue_keys() - checked)}; not published: {sorted(checked - catalogue_keys())}"
    )
