"""Generated request bodies for fuzzing a service's write endpoints (hypothesis strategies), and the
check every answer must pass: no 5xx whatever the body, and every 4xx in problem+json.

The bodies mix what a hostile or broken client sends: arbitrary JSON, a valid body with one value
somewhere replaced, added or removed, brackets nested thousands deep, huge integers, and bytes that
are not JSON (or not UTF-8) at all.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Bounded in time: ~200 bodies per endpoint by default; FUZZ_EXAMPLES raises it for a longer hunt.
FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # NaN and Infinity too: Python's json writes them, strict parsers refuse them
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "CN", "DE", "440000", "2025-05-10", "\x00", "\ud800", "x" * 600])
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one place changed: a value replaced, a key added or removed, an item dropped."""
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        choice = draw(st.sampled_from(["replace", "recurse", "remove", "add"]))
        changed = dict(value)
        if choice == "replace":
            changed[key] = draw(json_values)
        elif choice == "recurse":
            changed[key] = draw(_mutated(value[key]))
        elif choice == "remove":
            del changed[key]
        else:
            changed[draw(st.text(max_size=12))] = draw(json_values)
        return changed
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        changed_list = list(value)
        choice = draw(st.sampled_from(["recurse", "drop", "append"]))
        if choice == "recurse":
            changed_list[index] = draw(_mutated(value[index]))
        elif choice == "drop":
            del changed_list[index]
        else:
            changed_list.append(draw(json_values))
        return changed_list
    return draw(json_values)


def _encoded(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _in_place_of_a_value(valid: Any, raw: bytes, key: str) -> bytes:
    """`valid` encoded with `raw` in place of its value at `key`, so a parser meets `raw` past the envelope."""
    marker = "\u0001raw\u0001"
    return _encoded({**valid, key: marker}, True).replace(json.dumps(marker).encode(), raw)


@st.composite
def _placed(draw: st.DrawFn, valid: Any, raw: bytes) -> bytes:
    if not isinstance(valid, dict) or not valid or draw(st.booleans()):
        return raw
    return _in_place_of_a_value(valid, raw, draw(st.sampled_from(sorted(valid))))


@st.composite
def _deeply_nested(draw: st.DrawFn, valid: Any) -> bytes:
    depth = draw(st.integers(min_value=100, max_value=20_000))
    arrays, objects = b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth
    nest = draw(st.sampled_from([arrays, objects]))
    return draw(_placed(valid, nest))


@st.composite
def _huge_number(draw: st.DrawFn, valid: Any) -> bytes:
    return draw(_placed(valid, b"9" * draw(st.integers(min_value=4000, max_value=20_000))))


def request_bodies(valid: Any = None) -> st.SearchStrategy[bytes]:
    """Bodies for an endpoint whose valid body looks like `valid` (None: it takes no body)."""
    ascii_only = st.booleans()
    anything = st.builds(_encoded, json_values, ascii_only)
    near_valid = st.builds(_encoded, _mutated(valid), ascii_only) if valid is not None else anything
    return st.one_of(
        near_valid,
        near_valid,
        anything,
        _deeply_nested(valid),
        _huge_number(valid),
        st.binary(max_size=200),
        st.just(b""),
    )


content_types = st.sampled_from(["application/json", "application/json", "text/plain", "multipart/form-data"])


def write_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every documented `(METHOD, path template)` of the app that accepts a write."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() in WRITE_METHODS
    }


def fill_path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], template)


def assert_handled(status: int, headers: Any, text: str, what: str) -> None:
    """The fuzzing check: the service judged the body (never a 5xx), and explained a refusal."""
    assert status < 500, f"{what}: {status} {text[:500]}"
    if status >= 400:
        assert headers.get("content-type") == "application/problem+json", f"{what}: {status} {headers}"
        problem = json.loads(text)
        assert problem["status"] == status and problem["title"] and problem["detail"], f"{what}: {text[:500]}"


def each_write_route(valid: Mapping[tuple[str, str], Any]) -> pytest.MarkDecorator:
    """Parametrizes a test with `method` and `path` over the routes of `valid`, named `METHOD path`."""
    routes = sorted(valid)
    return pytest.mark.parametrize(("method", "path"), routes, ids=[f"{m} {p}" for m, p in routes])


async def send_generated_body(
    client: httpx.AsyncClient,
    data: st.DataObject,
    route: tuple[str, str],
    valid: Any,
    ids: Mapping[str, str],
    headers: Mapping[str, str],
    content_type: st.SearchStrategy[str] = content_types,
) -> None:
    """One generated body to the route, its path's ids each the real one (`ids`), an unknown one or not an
    id at all; the answer must pass `assert_handled`."""
    method, path = route
    sent = data.draw(request_bodies(valid), label="body")
    url = fill_path(
        path, {name: data.draw(st.sampled_from([real, str(uuid.uuid4()), "not-a-uuid"])) for name, real in ids.items()}
    )
    request_headers = {**headers, "Content-Type": data.draw(content_type)}
    response = await client.request(method, url, content=sent, headers=request_headers)
    assert_handled(response.status_code, response.headers, response.text, f"{method} {url} {sent[:200]!r}")
