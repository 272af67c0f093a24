"""Opaque list cursors: the id of the last item of a page (ids are time-ordered UUIDs, so id order is
creation order), URL-safe base64 of its 16 bytes."""

from __future__ import annotations

import base64
import binascii
import uuid


def encode_cursor(item_id: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(str(item_id)).bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """The id after which the next page starts; ValueError when the cursor is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a valid cursor") from exc
