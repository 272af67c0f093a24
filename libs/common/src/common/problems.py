"""The problem+json body (RFC 9457) as the services' OpenAPI documents describe it; each service adds the
fields of its own (`existing_id` of a 409, `current_version` of a 412)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description='Where the problem is, e.g. `["body", "<field>"]` or `["query", "<name>"]`.')
    msg: str = Field(description="What is wrong.")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI identifying the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this case.")
    errors: list[ValidationIssue] | None = Field(default=None, description="For 422: every invalid field.")
