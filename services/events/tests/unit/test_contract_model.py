"""The published contract (`contracts.v1.EventState`) is its own model, not the domain's: this test
fails when the two drift apart (a field added, renamed or retyped on one side only)."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from events.contracts.v1 import EventState
from events.domain.model import EventContent, EventCreate
from pydantic import BaseModel

# What the stored state adds to the client's content (the aggregate's own fields).
STATE_ONLY = {"id", "status", "version", "created_at", "updated_at"}


def shape(annotation: Any) -> Any:
    """A type with its validation details (Annotated constraints) left out; models as their fields."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: shape(f.annotation) for name, f in annotation.model_fields.items()}
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return shape(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return ("union", frozenset(repr(shape(a)) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return ("literal", typing.get_args(annotation))
    if origin is not None:
        return (origin, tuple(shape(a) for a in typing.get_args(annotation)))
    return annotation


def test_the_contract_has_every_field_of_the_domain_with_the_same_type():
    domain = {name: shape(f.annotation) for name, f in EventContent.model_fields.items()}
    domain["organizer"] = shape(EventCreate.model_fields["organizer"].annotation)
    domain["external_ref"] = shape(EventCreate.model_fields["external_ref"].annotation)
    published = {name: shape(f.annotation) for name, f in EventState.model_fields.items() if name not in STATE_ONLY}
    # The contract's organizer is never null; the request's may be (the token's body is meant then).
    assert domain.pop("organizer") == ("union", frozenset({repr(published.pop("organizer")), repr(type(None))}))
    assert published == domain


def test_the_comparison_notices_a_drift():
    class Drifted(EventState):
        papers: str  # type: ignore[assignment]

    published = {name: shape(f.annotation) for name, f in Drifted.model_fields.items() if name not in STATE_ONLY}
    domain = {name: shape(f.annotation) for name, f in EventContent.model_fields.items()}
    assert published["papers"] != domain["papers"]
