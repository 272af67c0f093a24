"""What a consumer does with a failure, and how it talks about one.

`classify` tells a message that is wrong in itself ("poison": it fails the same way however often it
is retried) from trouble around it ("transient": the broker, the network, an offset commit, a deadlock,
a serialization failure, another consumer changing the same rows): only poison may ever be
dead-lettered, and only once it keeps failing on its own; everything else is retried. `describe` names
a failure by its type and location only: messages of pydantic, the database and SQLAlchemy quote the
values they rejected (a name, an email), and those must not reach a log line or a Kafka header.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError

Failure = Literal["poison", "transient"]

# SQLSTATE classes of errors a statement's values cause (22: data exception, 23: integrity constraint
# violation); every other class (08 connection, 40 rollback: deadlock and serialization, 53/57
# resources and cancellation, ...) is about the database's state, not the message.
_DATA_CLASSES = frozenset({"22", "23"})
# A location step is printed only when it looks like a field name: dictionary keys are input too.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_MAX_ERRORS = 5


class InvalidMessage(Exception):
    """The message's data cannot be applied, whatever we retry: it goes to the dead-letter topic.
    Its text says what is wrong and where ("data.country: unknown code"), never the offending value;
    raise it `from` the ValidationError that found the problem, if any, and its locations are added."""


class DeadLetterFailed(Exception):
    """Sending a message to its dead-letter topic failed: the batch is retried, its offsets stay put."""


def classify(exc: BaseException) -> Failure:
    """Poison for an invalid envelope or data (ValidationError, InvalidMessage) and for a database
    error caused by the statement's values (SQLSTATE class 22 or 23, or SQLite's data and integrity
    errors); "transient" for anything else. A consumer retries both; it dead-letters a message only
    after it failed with a poison error when applied alone, again and again (a unique violation while
    two consumers briefly own a partition is gone on the next try)."""
    if isinstance(exc, ValidationError | InvalidMessage):
        return "poison"
    state = sqlstate(exc)
    if state is not None:
        return "poison" if state[:2] in _DATA_CLASSES else "transient"
    if isinstance(exc, DataError | IntegrityError) or isinstance(_driver_error(exc), ValueError):
        return "poison"  # SQLite's errors carry no SQLSTATE; asyncpg refuses a value it cannot encode
    return "transient"


def decode_failure_reason(exc: BaseException) -> str:
    """The dead-letter reason of a message that cannot be decoded (always poison): its envelope or its data."""
    return "invalid-envelope" if isinstance(exc, ValidationError) else "invalid-data"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error, raw from asyncpg or wrapped by SQLAlchemy (None otherwise)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def describe(exc: BaseException, *, _depth: int = 0) -> str:
    """The failure's type and where it happened, without any value from the input: a ValidationError
    gives its locations and error types, a database error its driver error and SQLSTATE, an
    InvalidMessage its own text; anything else only its class name. Causes follow after "<-"."""
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        return f"{name}: {_validation_errors(exc)}"
    text = f"{name}: {exc}" if isinstance(exc, InvalidMessage) else name + _driver_detail(exc)
    cause = exc.__cause__
    if cause is not None and cause is not getattr(exc, "orig", None) and _depth < 3:
        text += f" <- {describe(cause, _depth=_depth + 1)}"
    return text


def _validation_errors(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    shown = [f"{_location(e['loc'])} {e['type']}" for e in errors[:_MAX_ERRORS]]
    if len(errors) > _MAX_ERRORS:
        shown.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(shown)


def _location(loc: tuple[int | str, ...]) -> str:
    steps = [str(step) if isinstance(step, int) or _FIELD_NAME.match(step) else "*" for step in loc]
    return ".".join(steps) or "(root)"


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception under SQLAlchemy's (whose asyncpg adapter wraps asyncpg's, which
    names the problem: UniqueViolationError, DataError)."""
    driver = getattr(exc, "orig", None)
    if not isinstance(driver, BaseException):
        return None
    return driver.__cause__ if driver.__cause__ is not None else driver


def _driver_detail(exc: BaseException) -> str:
    """SQLAlchemy's message adds the SQL and its parameters to the driver's, which may quote input too:
    keep the driver error's class, SQLSTATE and SQLite error name."""
    parts: list[str] = []
    driver = _driver_error(exc)
    if driver is not None and type(driver).__name__ != type(exc).__name__:
        parts.append(type(driver).__name__)
    state = sqlstate(exc)
    if state is not None:
        parts.append(f"SQLSTATE {state}")
    code = getattr(getattr(exc, "orig", None), "sqlite_errorname", None)
    if isinstance(code, str):
        parts.append(code)
    return f" ({', '.join(parts)})" if parts else ""
