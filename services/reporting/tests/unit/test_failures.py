"""Reporting's own failures, as the consumer (and the rebuild) classify and describe them."""

from __future__ import annotations

import pytest
from common.kafka.failures import classify, describe
from common.testing.messages import cloud_event
from reporting.projections.changes import decode_message
from reporting.projections.ports import ConcurrentApply

NAME = "Wilhelmina Quorndon-Pryce"


def test_a_concurrent_apply_is_retried_never_dead_lettered() -> None:
    assert classify(ConcurrentApply("events of this batch were changed by another consumer meanwhile")) == "transient"


@pytest.mark.parametrize(
    "data",
    [
        {"version": 1, "title": NAME, "organizer": {"kind": "province", "code": NAME}, "start_date": NAME},
        {"version": NAME, "organizer": {"kind": NAME}},
    ],
)
def test_undecodable_data_is_poison_and_described_without_its_values(data: dict[str, object]) -> None:
    raw = cloud_event(source="/events", type="exchange.event.recorded", subject="e1", data=data).to_bytes()
    with pytest.raises(Exception) as caught:
        decode_message(raw)
    assert classify(caught.value) == "poison"
    described = describe(caught.value)
    assert "data" in described and "Quorndon" not in described
