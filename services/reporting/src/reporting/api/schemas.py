"""Response shapes (documentation of the contract's reporting part; the figures are plain integers)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RegionRead(BaseModel):
    code: str = Field(examples=["m49:150"])
    name: str
    name_zh: str
    kind: Literal["all", "world", "group", "province", "national"]


class RegionList(BaseModel):
    items: list[RegionRead]
    next_cursor: str | None = None


class PartnerFigures(BaseModel):
    organizations: int
    agreements_active: int
    agreements_signed: int
    agreements_expiring_90d: int
    countries: int
    flagship_agreements: int


class EventFigures(BaseModel):
    count: int
    participants: int
    foreign_participants: int
    papers: int
    countries: int
    flagship: int
    by_type: dict[str, int]


class TalentFigures(BaseModel):
    persons: int
    by_group: dict[str, int]
    reserve: int
    posts: int
    posts_by_role: dict[str, int]


class RegionMetrics(BaseModel):
    region: str
    year: int | None = Field(description="null: all years")
    as_of: datetime
    partners: PartnerFigures
    events: EventFigures
    talent: TalentFigures


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
