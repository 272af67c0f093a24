"""`common.etag`: the `ETag` of a version, and the versions an `If-Match` header names (every service's 412 check)."""

from __future__ import annotations

import pytest
from common.etag import etag, if_match_versions


@pytest.mark.parametrize("value", [None, "*", "  *  "])
def test_no_header_or_a_star_checks_nothing(value: str | None) -> None:
    assert if_match_versions(value) is None


@pytest.mark.parametrize(
    ("value", "versions"),
    [
        ('"3"', {3}),
        ("3", {3}),
        ('W/"3"', {3}),
        (' "3" , W/"7",12 ', {3, 7, 12}),
        ('"999999999999"', {999_999_999_999}),
    ],
)
def test_each_tag_names_its_version(value: str, versions: set[int]) -> None:
    assert if_match_versions(value) == versions


@pytest.mark.parametrize("value", ['"abc"', '"-1"', '"10000000000000"', "", '"3" "4"'])
def test_a_tag_that_is_not_a_version_matches_none(value: str) -> None:
    # an empty set, not None: the change is refused (412), never applied unchecked
    assert if_match_versions(value) == frozenset()


def test_a_list_keeps_the_tags_that_are_versions() -> None:
    assert if_match_versions('"abc", "5"') == {5}


def test_the_etag_of_a_version_is_the_version_quoted_and_reads_back() -> None:
    header = etag(3)
    assert header == {"ETag": '"3"'}
    assert if_match_versions(header["ETag"]) == {3}
