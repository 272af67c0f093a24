"""A resource's version as its entity tag: the `ETag` a read answers with, as the OpenAPI documents it, and
the versions an `If-Match` header names."""

from __future__ import annotations

import re
from typing import Any

# A response header object of the OpenAPI documents: `responses={200: {"headers": ETAG_HEADER}}`.
ETAG_HEADER: dict[str, Any] = {"ETag": {"description": 'The version, quoted: `"1"`.', "schema": {"type": "string"}}}

# One entity tag, weak or strong, quotes optional: `"3"`, `W/"3"`, `3`; twelve digits at most.
_TAG = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')


def etag(version: int) -> dict[str, str]:
    """The `ETag` header of a resource at `version`: the version, quoted (`"3"`)."""
    return {"ETag": f'"{version}"'}


def if_match_versions(value: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` header names; None when it names none to check (absent, or `*`). A tag
    that is not a version matches no version, so a change under it is refused (412), never applied."""
    if value is None or value.strip() == "*":
        return None
    return frozenset(int(m.group(1)) for part in value.split(",") if (m := _TAG.match(part.strip())))
