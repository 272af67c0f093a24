"""Opaque list cursors: the id of the last item of a page (ids are time-ordered UUIDs, so id order is
creation order), URL-safe base64 of its 16 bytes; and the list routes' paging parameters as the contract
states them (`?limit=`, at most 500; `?cursor=`, the previous page's `next_cursor`)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import Query

from common.openapi_types import CURSOR

# The default (50) is each route's own: `limit: PageLimit = 50`, `cursor: PageCursor = None`.
PageLimit = Annotated[int, Query(ge=1, le=500, description="Page size (default 50, at most 500).")]
PageCursor = Annotated[
    str | None, Query(pattern=CURSOR, description="`next_cursor` of the previous page (22 characters).")
]


def encode_cursor(item_id: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(str(item_id)).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """The id after which the next page starts; ValueError when the cursor is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a valid cursor") from exc
