"""`common.problems.problem_response`: a documented error answer is problem+json only, its schema the
document's ProblemDetails, and FastAPI lists it so (no `application/json` twin)."""

from __future__ import annotations

from common.errors import PROBLEM
from common.problems import problem_response
from fastapi import FastAPI

REF = {"$ref": "#/components/schemas/ProblemDetails"}


def test_without_an_example() -> None:
    assert problem_response("No such thing") == {"description": "No such thing", "content": {PROBLEM: {"schema": REF}}}


def test_with_an_example() -> None:
    example = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "There is no thing 1."}
    answer = problem_response("No such thing", example)
    assert answer["content"] == {PROBLEM: {"schema": REF, "example": example}}


def test_fastapi_documents_it_as_problem_json_only() -> None:
    app = FastAPI()

    @app.get("/things/{n}", responses={404: problem_response("No such thing")})
    async def thing(n: int) -> dict[str, int]:
        return {"n": n}

    documented = app.openapi()["paths"]["/things/{n}"]["get"]["responses"]["404"]
    assert documented == {"description": "No such thing", "content": {PROBLEM: {"schema": REF}}}
