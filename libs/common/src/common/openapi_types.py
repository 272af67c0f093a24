"""Values whose OpenAPI states exactly what the APIs accept (schemathesis checks both ways): a day, a
country code, a list cursor."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from common.regions import country_codes

EARLIEST, LATEST = date(1949, 1, 1), date(2100, 12, 31)
# The year bounded by the pattern, the day itself by `format: date` (2025-02-30 is not one).
DOC_DATE = r"^(?:19(?:49|[5-9]\d)|20\d\d|2100)-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    # pydantic would also read a number as a timestamp (`0` is 1970-01-01); the document says YYYY-MM-DD.
    if not isinstance(value, date) and not (isinstance(value, str) and _ISO.fullmatch(value)):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Day = Annotated[
    date,
    Field(ge=EARLIEST, le=LATEST, json_schema_extra={"pattern": DOC_DATE}),
    BeforeValidator(_iso_day),
]

# An ISO 3166-1 alpha-2 code in either case; each letter spelled out ([Dd][Ee]) rather than `(?i)`, whose
# Unicode case folding (and `str.upper`) would let e.g. the dotless `ı` through as `I`.
COUNTRY = "^(?:" + "|".join(f"[{c[0]}{c[0].lower()}][{c[1]}{c[1].lower()}]" for c in sorted(country_codes())) + ")$"

# `common.pagination`'s cursors: URL-safe base64 of 16 bytes, unpadded (any 22 such characters decode).
CURSOR = r"^[A-Za-z0-9_-]{22}$"
