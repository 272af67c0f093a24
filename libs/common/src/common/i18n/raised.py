"""Finding the texts a service raises to its callers (for the catalogue's completeness test).

Read from the source: the first argument of every problem (`Unprocessable("…")`, `problem_response(422,
"…")`), of every `ValueError` a validator raises (pydantic answers it as `Value error, …`), of a domain's
refusals, and every `"msg"` of an `errors` item. An f-string becomes a sample with `X` for each value.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROBLEMS = {
    "Problem",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "PreconditionFailed",
    "PayloadTooLarge",
    "Unprocessable",
    "Unavailable",
    "ValueError",
    "DomainError",
    "InvalidValue",
    "NotPermitted",
    "WrongState",
}
SAMPLE = "X"


def _sample(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else SAMPLE for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _sample(node.left), _sample(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.IfExp):
        return _sample(node.body)
    return None


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def raised_texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, sample) of every text ``source`` raises to a caller."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            argument = None
            if name in PROBLEMS and node.args:
                argument = node.args[0]
            elif name == "problem_response" and len(node.args) > 1:
                argument = node.args[1]
            if argument is not None and (text := _sample(argument)) is not None and text != SAMPLE:
                yield node.lineno, text
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                text = _sample(value) if isinstance(key, ast.Constant) and key.value == "msg" else None
                if text is not None and text != SAMPLE:
                    yield node.lineno, text


def raised_in(paths: list[Path]) -> Iterator[tuple[Path, int, str]]:
    for path in paths:
        for line, text in raised_texts(path.read_text(encoding="utf-8")):
            yield path, line, text
