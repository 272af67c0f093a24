"""Query parameters a route does not declare, or one given twice, are refused (422), not silently ignored: a
misspelt filter (`?contry=DE`) would otherwise answer an unfiltered list as if it had been applied, and of
`?country=DE&country=FR` only one would be applied."""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from common.errors import Unprocessable

_DECLARED: dict[int, frozenset[str]] = {}


def _declared(route: APIRoute) -> frozenset[str]:
    names = _DECLARED.get(id(route))
    if names is None:
        # and those a route that reads its query itself states in `openapi_extra` (talent's stream options)
        stated = (route.openapi_extra or {}).get("parameters", [])
        names = frozenset(_query_names(route.dependant) | {p["name"] for p in stated if p.get("in") == "query"})
        _DECLARED[id(route)] = names
    return names


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def no_unknown_query(request: Request) -> None:
    """A router dependency: 422 naming every query parameter the route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    unknown = sorted(set(request.query_params.keys()) - _declared(route))
    if unknown:
        raise Unprocessable(
            "Unknown query parameter: " + ", ".join(repr(name) for name in unknown) + ".",
            errors=[{"loc": ["query", name], "msg": "not a parameter of this operation"} for name in unknown],
        )
    # Every parameter takes one value (no route takes a list in the query): a second one would be dropped.
    repeated = sorted(
        name for name, count in Counter(name for name, _ in request.query_params.multi_items()).items() if count > 1
    )
    if repeated:
        raise Unprocessable(
            "A query parameter given more than once: " + ", ".join(repr(name) for name in repeated) + ".",
            errors=[{"loc": ["query", name], "msg": "given more than once"} for name in repeated],
        )
