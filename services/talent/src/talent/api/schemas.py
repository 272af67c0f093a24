"""Request and response shapes of the talent API beyond the domain and contract models."""

from __future__ import annotations

from datetime import date
from typing import Any

import common.problems
from pydantic import BaseModel, ConfigDict, Field

from talent.contracts import PersonPublic
from talent.contracts.v1 import PERSON_EXAMPLE, RoleName
from talent.domain.model import MAX_SYNC_RECORDS, Mode, PersonRecord

Responses = dict[int | str, dict[str, Any]]


class ValidationIssue(common.problems.ValidationIssue):
    loc: list[str] = Field(description='Where the problem is, e.g. `["records", "3", "email"]`.')
    msg: str = Field(description="What is wrong (never the value itself: records are personal data).")


class ProblemDetails(common.problems.ProblemDetails):
    """An RFC 9457 problem (`application/problem+json`)."""

    errors: list[ValidationIssue] | None = Field(default=None, description="For 422: every invalid field.")  # type: ignore[assignment]


# Any item is taken: one that is not a valid record is answered in `rejected`, with its errors.
ANY_RECORD: dict[str, Any] = {
    "anyOf": [
        {"$ref": "#/components/schemas/PersonRecord"},
        {"description": "Anything else: answered in `rejected`, with its errors."},
    ]
}


def any_record_taken(document: dict[str, Any]) -> None:
    """The document's `SyncRequest.records` items as `ANY_RECORD` (a `$ref` pydantic cannot resolve while
    it builds `SyncRequest` alone)."""
    document["components"]["schemas"]["SyncRequest"]["properties"]["records"]["items"] = ANY_RECORD


_RECORD_EXAMPLES: Any = PersonRecord.model_config.get("json_schema_extra", {})


class SyncRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"mode": "delta", "records": _RECORD_EXAMPLES["examples"]}]},
    )

    mode: Mode = Field(description="`delta`: only these records; `full`: also remove the society's people not named.")
    records: list[Any] = Field(
        max_length=MAX_SYNC_RECORDS,
        description="At most 10,000 `PersonRecord`s (more: 413), each validated on its own: one that is not a "
        "valid record is answered in `rejected` and the others are still synced.",
    )
    # strict: `0` or `"no"` are not the boolean the document states
    dry_run: bool = Field(default=False, strict=True, description="Answer what the sync would do; change nothing.")
    society: str | None = Field(
        default=None, max_length=32, description="Only for hq with admin: the society whose pool this is."
    )


class Rejection(BaseModel):
    index: int = Field(description="The record's position in the request (0-based; the line for a stream).")
    external_id: str | None = Field(description="The record's external_id, when it had a readable one.")
    errors: list[ValidationIssue]


class SyncResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "full",
                    "dry_run": False,
                    "created": 120,
                    "updated": 3,
                    "unchanged": 9870,
                    "removed": 2,
                    "rejected": [
                        {
                            "index": 17,
                            "external_id": "CMES-000140",
                            "errors": [
                                {
                                    "loc": ["records", "17", "orcid"],
                                    "msg": "Value error, the ORCID check digit does not match",
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    mode: Mode
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    removed: int
    rejected: list[Rejection]


class PersonView(PersonPublic):
    """A person as read. The fields below the public ones are there only for a reader with
    `talent:sync` of the person's society, or hq with admin; every other reader gets the public shape."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                PERSON_EXAMPLE,
                {
                    **PERSON_EXAMPLE,
                    "external_id": "CMES-000123",
                    "name": "王芳",
                    "name_en": "Wang Fang",
                    "gender": "F",
                    "birth_year": 1978,
                    "affiliation": "Tsinghua University",
                    "email": "wang.fang@example.org",
                    "orcid": "0000-0002-1825-0097",
                    "fields": ["mechanical engineering"],
                },
            ]
        },
    )

    external_id: str | None = None
    name: str | None = None
    name_en: str | None = None
    gender: str | None = None
    birth_year: int | None = None
    affiliation: str | None = None
    email: str | None = None
    orcid: str | None = None
    fields: list[str] | None = None


class PersonPage(BaseModel):
    items: list[PersonView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class PostView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": PERSON_EXAMPLE["id"],
                    "society": "CMES",
                    "organization": "World Federation of Engineering Organizations",
                    "organization_country": "FR",
                    "role": "executive_board",
                    "start_date": "2023-10-01",
                    "end_date": None,
                }
            ]
        }
    )

    person_id: str
    society: str
    organization: str
    organization_country: str | None
    role: RoleName
    start_date: date
    end_date: date | None


class PostPage(BaseModel):
    items: list[PostView]
    next_cursor: str | None


def problem(status: int, description: str, example_detail: str) -> dict[str, Any]:
    example = {"type": "about:blank", "title": description, "status": status, "detail": example_detail}
    return common.problems.problem_response(description, example)


UNAUTHORIZED: Responses = {401: problem(401, "Unauthorized", "An `Authorization: Bearer <JWT>` header is required.")}
FORBIDDEN: Responses = {403: problem(403, "Forbidden", "The token lacks the `talent:sync` scope.")}
NOT_FOUND: Responses = {404: problem(404, "Not found", "There is no person 0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b.")}
STALE: Responses = {412: problem(412, "Precondition failed", "The person is at version 3; If-Match names another.")}
TOO_LARGE: Responses = {413: problem(413, "Payload too large", "A JSON sync holds at most 10,000 records.")}
UNSUPPORTED: Responses = {415: problem(415, "Unsupported media type", "Send application/json or application/x-ndjson.")}
INVALID: Responses = {422: problem(422, "Validation failed", "mode: Input should be 'delta' or 'full'")}
