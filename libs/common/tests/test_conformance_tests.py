"""`common.testing.contract.conformance_tests`: the tests it gives a module run schemathesis against the
module's `live` server with the headers and `prepare` given, and the stateful one fails on a server that
breaks its document."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import schemathesis
from common.testing.contract import conformance_tests, every_check, load, state_machine
from common.testing.live import LiveServer
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

HEADERS = {"X-Key": "k"}
PREPARED: list[str] = []


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=20)]


class Note(NoteCreate):
    id: uuid.UUID


_MISSING = {401: {"description": "No `X-Key`"}, 404: {"description": "No such note"}}
_UNREADABLE = {400: {"description": "The body could not be read (e.g. not UTF-8)"}}


def notes_app(*, broken: bool = False) -> FastAPI:
    """Notes to create and read; `broken` answers 500 to every creation."""
    app = FastAPI()
    notes: dict[uuid.UUID, Note] = {}

    def check(key: str | None) -> None:
        if key != HEADERS["X-Key"]:
            raise HTTPException(401)

    @app.post("/notes", status_code=201, response_model=Note, responses={401: _MISSING[401], **_UNREADABLE})
    async def create(body: NoteCreate, x_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        check(x_key)
        if broken:
            return JSONResponse({"detail": "broken"}, status_code=500)
        note = Note(id=uuid.uuid4(), text=body.text)
        notes[note.id] = note
        return JSONResponse(note.model_dump(mode="json"), status_code=201, headers={"Location": f"/notes/{note.id}"})

    @app.get("/notes/{note_id}", response_model=Note, responses=_MISSING)
    async def read(note_id: uuid.UUID, x_key: Annotated[str | None, Header()] = None) -> Note:
        check(x_key)
        if note_id not in notes:
            raise HTTPException(404)
        return notes[note_id]

    return app


def _prepare(case: schemathesis.Case[Any]) -> None:
    PREPARED.append(case.method)


schema = load(notes_app().openapi())


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer(notes_app(), "notes-live") as server:
        yield server


test_api_conforms_to_its_openapi, workflow, test_stateful_workflows_conform = conformance_tests(
    schema, headers=HEADERS, checks=every_check(), max_examples=5, prepare=_prepare
)


def test_every_case_was_prepared_first() -> None:
    # runs after the two above (pytest keeps a module's order): both sent only cases `prepare` had seen
    assert {"POST", "GET"} <= set(PREPARED)


def test_the_stateful_test_fails_on_a_server_that_breaks_its_document() -> None:
    with LiveServer(notes_app(broken=True), "notes-broken") as broken:
        machine = state_machine(schema, lambda: broken.url, HEADERS, every_check())
        # schemathesis reports what it found as a group (a BaseExceptionGroup), one failure or several
        with pytest.raises(BaseExceptionGroup) as caught:
            test_stateful_workflows_conform(machine)
    assert "Server error" in "".join(traceback.format_exception(caught.value))
