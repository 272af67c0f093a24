"""problem+json (RFC 9457) for every error; no stack trace ever reaches a client."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.i18n import DEFAULT, Lang, localize_errors, negotiate, title, translate

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An error answer. Raise a subclass from any layer above the domain."""

    status = 400

    def __init__(self, detail: str, *, status: int | None = None, type_: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.type = type_ or f"https://exchange-tracker.dev/problems/{self.status}"
        self.extra = extra


class Unauthorized(Problem):
    status = 401


class Forbidden(Problem):
    status = 403


class NotFound(Problem):
    status = 404


class Conflict(Problem):
    status = 409


class PreconditionFailed(Problem):
    status = 412


class PayloadTooLarge(Problem):
    status = 413


class Unprocessable(Problem):
    status = 422


class Unavailable(Problem):
    status = 503


_PROBLEM_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "1"}}


def problem_body(
    status: int, detail: str, type_: str | None = None, *, lang: Lang = DEFAULT, **extra: Any
) -> dict[str, Any]:
    """The problem+json body in `lang` (common.i18n): title, detail and every `errors[].msg`."""
    errors = extra.get("errors")
    said = translate(detail, lang)
    if isinstance(errors, list):
        extra["errors"] = localize_errors(errors, lang)
        if lang != DEFAULT and detail == detail_of(errors):  # a detail that lists the errors lists them so
            said = detail_of(extra["errors"])
    return {
        "type": type_ or f"https://exchange-tracker.dev/problems/{status}",
        "title": title(status, lang),
        "status": status,
        "detail": said,
        **extra,
    }


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, *, lang: Lang = DEFAULT, **extra: Any
) -> JSONResponse:
    body = problem_body(status, detail, lang=lang, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def language_of(request: Request) -> Lang:
    """The caller's language from `Accept-Language` (read only when an error is answered)."""
    return negotiate(request.headers.get("accept-language"))


TOO_DEEP = "The body is nested too deeply."


def too_deep_response(lang: Lang = DEFAULT) -> JSONResponse:
    """A JSON body nested deeper than Python's `json` can follow (it raises RecursionError): bad input."""
    return problem_response(422, TOO_DEEP, lang=lang, errors=[{"loc": ["body"], "msg": "nested too deeply"}])


def language_of_scope(scope: Scope) -> Lang:
    """`language_of` for ASGI middleware, which has the scope and no request."""
    accept = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept-language"), None)
    return negotiate(accept)


def validation_errors(errors: Any, *, typed: bool = False) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as the contract's `{loc, msg}` list (input values left out: may be personal).

    `typed`: keep each error's `type` and `ctx` as well, for a problem's errors: the answer then says the
    message in the caller's language by its type (`problem_body` uses and drops them)."""
    if typed:
        return [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": e.get("type"),
                "ctx": e.get("ctx"),
            }
            for e in errors
        ]
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors]


def detail_of(errors: list[dict[str, Any]]) -> str:
    """The `detail` of a validation problem: its first errors, `loc: msg`."""
    return "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "The request is not valid."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = _PROBLEM_HEADERS.get(exc.status)
        lang = language_of(request)
        return problem_response(exc.status, exc.detail, headers=headers, type_=exc.type, lang=lang, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors(), typed=True)
        return problem_response(422, detail_of(errors), lang=language_of(request), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's body parser says 400 for any failure
            return too_deep_response(language_of(request))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(exc.status_code, str(exc.detail), headers=headers, lang=language_of(request))

    # SQLAlchemy wraps driver errors in DBAPIError; statements sent straight through asyncpg (the
    # services' hot paths) raise asyncpg's own.
    @app.exception_handler(DBAPIError)
    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        driver = exc.orig if isinstance(exc, DBAPIError) else exc
        if _is_unstorable(driver):
            return problem_response(
                422,
                "The request contains characters that cannot be stored (NUL or unpaired surrogates).",
                lang=language_of(request),
                errors=[{"loc": ["body"], "msg": "unstorable characters"}],
            )
        if isinstance(driver, _DISCONNECTS) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
            log.warning("database unreachable: %s: %s", type(driver).__name__, driver)
        else:
            log.exception("database error")
        return problem_response(
            503,
            "The database could not complete the request; try again.",
            headers={"Retry-After": "1"},
            lang=language_of(request),
        )

    # The database (or another dependency) unreachable: a refused or reset connection reaches the code
    # as a bare OSError (asyncpg raises it from connect, and SQLAlchemy passes it through), a timeout as
    # TimeoutError (an OSError too), an exhausted pool as SQLAlchemy's TimeoutError. One line each, no
    # traceback: an outage answers every request so.
    @app.exception_handler(OSError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unreachable: %s: %s", type(exc).__name__, exc)
        return problem_response(
            503,
            "A service this one depends on is unreachable; try again.",
            headers={"Retry-After": "1"},
            lang=language_of(request),
        )

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(request: Request, _exc: UnicodeEncodeError) -> JSONResponse:
        return problem_response(
            422,
            "The request contains characters that cannot be stored (unpaired surrogates).",
            lang=language_of(request),
            errors=[{"loc": ["body"], "msg": "unstorable characters"}],
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(500, "An internal error occurred; it has been logged.", lang=language_of(request))


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's 405 names only the first route whose path
    matches, so a path served by two routes (GET and POST apart) would announce half of its methods."""
    methods: set[str] = set()
    # Each route of the included routers too (FastAPI keeps an included router as one entry of its own).
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": "\x00"})  # a method no route serves
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


# The connection lost or refused by a server going away (class 08, class 57: shutting down, starting up).
_DISCONNECTS = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, OSError)


def _is_unstorable(exc: BaseException | None) -> bool:
    """PostgreSQL refuses NUL in text and asyncpg unpaired surrogates: bad input, not our failure."""
    text = f"{type(exc).__name__} {exc}"
    return any(
        marker in text
        for marker in ("CharacterNotInRepertoire", "UntranslatableCharacter", "surrogate", "0x00", "UnicodeEncode")
    )


# A route's own body limit: (scope, the service's limit) → bytes, or None for no limit at all.
BodyLimit = Callable[[Scope, int], int | None]


def route_limits(routes: Sequence[tuple[str, str, int | None]]) -> BodyLimit:
    """A `BodyLimit` from (method, path pattern, bytes or None) of the few routes that take more (an
    upload) or bound each record themselves (a stream); the pattern must match the whole path."""
    compiled = [(method, re.compile(pattern), limit) for method, pattern, limit in routes]

    def limit_for(scope: Scope, default: int) -> int | None:
        for method, pattern, limit in compiled:
            if scope["method"] == method and pattern.fullmatch(scope["path"]):
                return limit
        return default

    return limit_for


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether Content-Length says so or the stream shows it.

    A body without Content-Length (chunked) is read up to the limit first and then replayed: raising
    from inside the app's receive would surface as FastAPI's own 400 instead.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limit_for: BodyLimit | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes if self.limit_for is None else self.limit_for(scope, self.max_bytes)
        if limit is None:  # a route that streams its body and bounds each record itself
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await _send_413(scope, send, limit)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await _send_413(scope, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    lang = language_of_scope(scope)
    response = problem_response(413, f"The request body is larger than {limit} bytes.", lang=lang)
    await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
