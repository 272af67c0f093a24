"""JWT authentication per the contract: HS256 with a shared secret locally, RS256 from a JWKS URL
in production. The acting body always comes from the token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common.errors import Forbidden, Unauthorized, Unavailable

log = logging.getLogger(__name__)

OrgKind = Literal["province", "society", "hq"]
ORG_KINDS: tuple[str, ...] = ("province", "society", "hq")
SCOPES = ("events:write", "talent:sync", "partners:write", "reporting:read", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client and the body it acts for."""

    sub: str
    org_kind: OrgKind
    org_code: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.org_kind == "hq" and "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return scope in self.scopes or self.is_admin


@dataclass(frozen=True)
class AuthConfig:
    secret: str
    jwks_url: str | None = None
    audience: str | None = None


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, timeout=5)


def decode_token(token: str, config: AuthConfig) -> Principal:
    """Verify the signature and expiry and read the contract's claims; Unauthorized otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        options: Any = {"require": ["exp", "sub"], "verify_aud": config.audience is not None}
        if header.get("alg") == "RS256" and config.jwks_url:
            key: Any = _jwks_client(config.jwks_url).get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=config.audience, options=options)
        else:
            claims = jwt.decode(token, config.secret, algorithms=["HS256"], audience=config.audience, options=options)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.") from exc
    except jwt.PyJWKClientConnectionError as exc:  # our key source is down, not the caller's fault
        log.warning("JWKS unreachable: %s", exc)
        raise Unavailable("The token cannot be verified right now; try again.") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized("The token is not valid (signature, expiry, audience or claims).") from exc
    org_kind, org_code, scope = claims.get("org_kind"), claims.get("org_code"), claims.get("scope", "")
    if org_kind not in ORG_KINDS or not isinstance(org_code, str) or not org_code or not isinstance(scope, str):
        raise Unauthorized("The token lacks valid org_kind, org_code or scope claims.")
    return Principal(str(claims["sub"]), org_kind, org_code, frozenset(scope.split()))


def mint_token(
    *, secret: str, org_kind: str, org_code: str, scopes: list[str] | str, sub: str | None = None, ttl: int = 3600
) -> str:
    """An HS256 token for local use and tests."""
    scope = scopes if isinstance(scopes, str) else " ".join(scopes)
    now = int(time.time())
    claims = {
        "sub": sub or f"{org_kind}:{org_code}",
        "org_kind": org_kind,
        "org_code": org_code,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("An `Authorization: Bearer <JWT>` header is required.")
    config: AuthConfig = request.app.state.auth
    if config.jwks_url:  # PyJWKClient fetches over the network synchronously
        return await asyncio.to_thread(decode_token, credentials.credentials, config)
    return decode_token(credentials.credentials, config)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scope(scope: str) -> Any:
    """Dependency: the caller's token carries `scope` (or `admin` for an hq body)."""

    async def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"The token lacks the `{scope}` scope.")
        return principal

    return Depends(_check)


def main(argv: list[str] | None = None) -> None:
    """`exchange-token`: mint a local HS256 token for a body and scopes."""
    import os

    from common.settings import DEVELOPMENT_SECRET

    parser = argparse.ArgumentParser(prog="exchange-token", description=main.__doc__)
    parser.add_argument("--kind", required=True, choices=ORG_KINDS)
    parser.add_argument("--code", required=True, help="440000, CMES or HQ")
    parser.add_argument("--scope", action="append", required=True, choices=SCOPES)
    parser.add_argument("--sub")
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default one day)")
    args = parser.parse_args(argv)
    secret = os.environ.get("EXCHANGE_JWT_SECRET", DEVELOPMENT_SECRET)
    print(
        mint_token(secret=secret, org_kind=args.kind, org_code=args.code, scopes=args.scope, sub=args.sub, ttl=args.ttl)
    )
