"""Authentication for the events routes: the common JWT rules, with verified tokens remembered.

Clients send the same token with every request; verifying it each time (PyJWT decodes and checks
the base64 in pure Python) was a tenth of the single-POST CPU. A token is remembered only after a
full verification, only by the app that verified it, only under the keys it was verified with (a new
`app.state.auth`, e.g. with a key withdrawn, starts afresh) and only until its `exp`.
"""

from __future__ import annotations

import time
from typing import Annotated

from common.auth import AuthConfig, BearerTokenDep, Principal, bearer_token, verify_token
from common.errors import Forbidden
from fastapi import Depends, Request

MAX_REMEMBERED = 4096


# (the keys they were verified under, {token: principal})
Remembered = tuple[AuthConfig, dict[str, Principal]]


async def authenticate(request: Request, token: BearerTokenDep) -> Principal:
    return await _verified(request, token)


async def writer_of(request: Request) -> Principal:
    """`Writer` without FastAPI's dependency machinery, for the single-POST route (the hot one): the
    same rules and the same answers (401, then 403)."""
    return await require_writer(await _verified(request, bearer_token(request.headers.get("authorization"))))


async def _verified(request: Request, token: str) -> Principal:
    state = request.app.state
    # `state["auth"]`, not `state.auth`: State's attribute fallback costs a caught AttributeError per call
    config: AuthConfig = state["auth"]
    remembered: Remembered | None = state.__dict__.get("verified_tokens")
    if remembered is None or remembered[0] is not config:
        remembered = state.__dict__["verified_tokens"] = (config, {})
    tokens = remembered[1]
    hit = tokens.get(token)
    if hit is not None and hit.expires_at > time.time():
        return hit
    principal = await verify_token(token, config)
    if len(tokens) >= MAX_REMEMBERED:
        tokens.clear()
    tokens[token] = principal
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


async def require_writer(principal: Authenticated) -> Principal:
    if not principal.has("events:write"):
        raise Forbidden("The token lacks the `events:write` scope.")
    return principal


Writer = Annotated[Principal, Depends(require_writer)]
