"""Authentication for the events routes: the common JWT rules, with verified tokens remembered.

Clients send the same token with every request; verifying it each time (PyJWT decodes and checks
the base64 in pure Python) was a tenth of the single-POST CPU. A token is remembered only after a
full verification, only by the app that verified it (so by its secret), and only until its `exp`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Annotated, Any

from common.auth import AuthConfig, Principal, decode_token
from common.errors import Forbidden, Unauthorized
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

MAX_REMEMBERED = 4096
_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`.")


def _expiry(token: str) -> float:
    """`exp` of a token whose signature and expiry were just verified."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("An `Authorization: Bearer <JWT>` header is required.")
    return await _verified(request, credentials.credentials)


async def writer_of(request: Request) -> Principal:
    """`Writer` without FastAPI's dependency machinery, for the single-POST route (the hot one): the
    same header rules as `HTTPBearer(auto_error=False)` and the same answers (401, then 403)."""
    authorization = request.headers.get("authorization")
    scheme, token = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and token) or scheme.lower() != "bearer":
        raise Unauthorized("An `Authorization: Bearer <JWT>` header is required.")
    return await require_writer(await _verified(request, token))


async def _verified(request: Request, token: str) -> Principal:
    state = request.app.state
    remembered: dict[str, tuple[Principal, float]] = state.__dict__.setdefault("verified_tokens", {})
    hit = remembered.get(token)
    if hit is not None and hit[1] > time.time():
        return hit[0]
    config: AuthConfig = state.auth
    if config.jwks_url:  # PyJWKClient fetches keys over the network synchronously
        principal = await asyncio.to_thread(decode_token, token, config)
    else:
        principal = decode_token(token, config)
    if len(remembered) >= MAX_REMEMBERED:
        remembered.clear()
    remembered[token] = (principal, _expiry(token))
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


async def require_writer(principal: Authenticated) -> Principal:
    if not principal.has("events:write"):
        raise Forbidden("The token lacks the `events:write` scope.")
    return principal


Writer = Annotated[Principal, Depends(require_writer)]
