"""Announcements of changed regions are split under PostgreSQL's notification size limit."""

from __future__ import annotations

from reporting.adapters.postgresql import MAX_PAYLOAD, payloads


def test_regions_are_split_under_the_limit_and_none_is_lost() -> None:
    regions = {f"cn:{n:06d}" for n in range(3000)} | {"all", "group:eu"}
    chunks = payloads(regions)
    assert len(chunks) > 1
    assert all(len(c.encode()) <= MAX_PAYLOAD for c in chunks)
    assert set(",".join(chunks).split(",")) == regions


def test_nothing_changed_announces_nothing() -> None:
    assert payloads([]) == []
    assert payloads(["all"]) == ["all"]
