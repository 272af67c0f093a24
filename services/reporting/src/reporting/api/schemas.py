"""Response shapes (documentation of the contract's reporting part; the figures are plain integers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from reporting.catalogue import METRICS, keys_of


class RegionRead(BaseModel):
    code: str = Field(examples=["m49:150"])
    name: str
    name_zh: str
    kind: Literal["all", "world", "group", "province", "national"]


class RegionList(BaseModel):
    items: list[RegionRead]
    next_cursor: str | None = None


def _figures(model_name: str, section: str) -> type[BaseModel]:
    """A section's figures, one field per catalogue metric (reporting/catalogue.py)."""
    fields: dict[str, Any] = {}
    for m in METRICS:
        if m.section == section:
            described = f"{m.en} ({m.zh}), in {m.unit}"
            if m.vocabulary:
                keys = ", ".join(keys_of(m.vocabulary))
                fields[m.name] = (
                    dict[str, int],
                    Field(description=f"{described}, per key of `{m.vocabulary}`: {keys}"),
                )
            else:
                fields[m.name] = (int, Field(description=described))
    return create_model(model_name, **fields)


PartnerFigures = _figures("PartnerFigures", "partners")
EventFigures = _figures("EventFigures", "events")
TalentFigures = _figures("TalentFigures", "talent")


class RegionMetrics(BaseModel):
    region: str
    year: int | None = Field(description="null: all years")
    as_of: datetime
    partners: PartnerFigures  # type: ignore[valid-type]
    events: EventFigures  # type: ignore[valid-type]
    talent: TalentFigures  # type: ignore[valid-type]


class MetricsList(BaseModel):
    year: int | None
    regions: list[RegionMetrics]


class TrendPoint(BaseModel):
    year: int
    count: int = 0
    participants: int = 0
    foreign_participants: int = 0
    agreements_signed: int = 0


class Trend(BaseModel):
    region: str
    years: list[TrendPoint]


class TargetProgress(BaseModel):
    key: str
    name: str
    name_zh: str
    target: int
    value: int
    progress: float = Field(description="value / target (may exceed 1)")


class Targets(BaseModel):
    year: int | None
    as_of: datetime
    targets: list[TargetProgress]


class BodyRead(BaseModel):
    kind: Literal["province", "society", "hq"]
    code: str
    name: str | None
    name_zh: str | None
    events: int
    agreements_signed: int
    persons: int
    last_change: datetime | None
    nothing_recorded: bool = Field(description="a province with no event and no agreement in the year")


class BodyList(BaseModel):
    year: int
    items: list[BodyRead]
    next_cursor: str | None = None


class DashboardSession(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str = "reporting:read"


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ValidationIssue] | None = Field(default=None, description="For 422: every invalid parameter.")


_DESCRIPTIONS = {
    401: "Missing, expired or invalid token",
    403: "The token lacks `reporting:read`",
    404: "Unknown region",
    422: "Invalid parameters",
    503: "The process has its maximum of open streams (`REPORTING_SSE_MAX_SUBSCRIBERS`); retry after `Retry-After`",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "model": Problem,
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in statuses
    }
