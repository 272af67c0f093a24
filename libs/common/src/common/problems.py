"""The problem+json body (RFC 9457) as the services' OpenAPI documents describe it; each service adds the
fields of its own (`existing_id` of a 409, `current_version` of a 412)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.errors import PROBLEM


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


def problem_response(description: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response (`responses={404: problem_response(…)}`) answered as problem+json, its schema the
    document's `ProblemDetails`. No `model`: FastAPI would list an `application/json` answer too, and errors
    are problem+json only (`common.web.document_models` puts ProblemDetails into the components)."""
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {PROBLEM: media}}
