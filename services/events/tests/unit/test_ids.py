"""The batch path's id makers: canonical UUID strings of the right version and variant."""

from __future__ import annotations

import time
import uuid

from events.adapters.repository import uuid4_strings, uuid7_strings


def test_uuid4_strings_are_random_version_4_uuids():
    ids = uuid4_strings(5000)
    assert len(set(ids)) == 5000
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122
    # Every hex digit but the dashes, version and variant varies (no bit stuck by the assembly).
    for position in (p for p in range(36) if p not in (8, 13, 14, 18, 19, 23)):
        assert len({text[position] for text in ids}) == 16, position
    assert {text[19] for text in ids} == set("89ab")


def test_uuid7_strings_carry_the_time_and_sort_after_earlier_ones():
    before = time.time_ns() // 1_000_000
    ids = uuid7_strings(5000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 5000
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after
    assert {text[19] for text in ids} == set("89ab")
    time.sleep(0.002)
    assert min(uuid7_strings(10)) > max(ids)  # a later millisecond sorts later
    assert uuid4_strings(0) == uuid7_strings(0) == []
