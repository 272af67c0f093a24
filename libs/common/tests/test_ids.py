"""Time-ordered ids: RFC 9562 version 7, unique, and sorted by creation across milliseconds."""

from __future__ import annotations

import time
import uuid

from common.ids import new_message_id, uuid7, uuid7_strings
from common.testing.messages import cloud_event


def test_uuid7_has_version_7_and_the_rfc_variant() -> None:
    for value in [uuid7(), *map(uuid.UUID, uuid7_strings(50))]:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122


def test_uuid7_carries_the_current_unix_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_made_in_a_later_millisecond_sort_after_earlier_ones() -> None:
    earlier = uuid7_strings(100)
    time.sleep(0.002)
    later = [new_message_id() for _ in range(100)]
    assert max(earlier) < min(later)


def test_ids_are_unique_and_canonical_strings() -> None:
    values = uuid7_strings(10_000)
    assert len(set(values)) == 10_000
    assert all(str(uuid.UUID(v)) == v for v in values)


def test_a_messages_id_is_time_ordered() -> None:
    event = cloud_event(source="/test", type="test.happened", subject="x", data={})
    assert uuid.UUID(event.id).version == 7


def test_every_random_digit_of_the_batch_ids_varies() -> None:
    """No bit stuck by assembling the ids as text: each random hex digit takes all 16 values, the
    variant digit its four."""
    ids = uuid7_strings(5000)
    for position in range(14, 36):
        if position in (14, 18, 19, 23):  # the version digit, dashes, the variant digit
            continue
        assert len({text[position] for text in ids}) == 16, position
    assert {text[19] for text in ids} == set("89ab")
    assert uuid7_strings(0) == []
