"""JWT authentication per the contract: HS256 with a shared secret locally, RS256 from a JWKS URL
in production. The acting body always comes from the token."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

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
    expires_at: float = math.inf  # the token's `exp`

    @property
    def is_admin(self) -> bool:
        return self.org_kind == "hq" and "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return scope in self.scopes or self.is_admin


# What a token may be used for. A stream token (minted by reporting for the dashboard's EventSource,
# which must carry it in the URL) opens the metrics stream and nothing else.
Purpose = Literal["api", "stream"]
STREAM_AUDIENCE = "exchange-tracker/reporting-stream"
STREAM_TYPE = "stream"


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are verified. HS256 keys: `keys` maps each accepted `kid` to its secret and new tokens
    are signed with `current_kid`'s; without `keys`, `secret` is the one key and tokens carry no `kid`."""

    secret: str
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict, hash=False)
    current_kid: str | None = None

    @property
    def signing_key(self) -> tuple[str | None, str]:
        """(kid, secret) for new tokens."""
        if self.keys and self.current_kid is not None:
            return self.current_kid, self.keys[self.current_kid]
        return None, self.secret

    def secrets_for(self, kid: object) -> list[str]:
        """The secrets a token with this `kid` header may be signed with: none for a withdrawn kid."""
        if not self.keys:
            return [self.secret]
        if kid is None:  # minted before keys had ids: any accepted key (one or two)
            return list(self.keys.values())
        secret = self.keys.get(kid) if isinstance(kid, str) else None
        return [secret] if secret is not None else []


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, timeout=5)


def _decode_hs256(token: str, kid: object, config: AuthConfig, options: Any) -> dict[str, Any]:
    secrets = config.secrets_for(kid)
    if not secrets:
        raise jwt.InvalidKeyError("unknown kid")
    for secret in secrets[:-1]:
        try:
            return dict(jwt.decode(token, secret, algorithms=["HS256"], issuer=config.issuer, options=options))
        except jwt.InvalidSignatureError:
            continue
    return dict(jwt.decode(token, secrets[-1], algorithms=["HS256"], issuer=config.issuer, options=options))


def _check_audience(claims: dict[str, Any], config: AuthConfig, purpose: Purpose) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if claims.get("typ") == STREAM_TYPE or STREAM_AUDIENCE in audiences:
        # our own stream token: checked against our stream audience, whatever audience the API expects
        if purpose != "stream" or claims.get("typ") != STREAM_TYPE or STREAM_AUDIENCE not in audiences:
            raise Unauthorized("This token opens the metrics stream only.")
    elif aud is not None and not isinstance(aud, str | list):
        raise Unauthorized("The token's audience claim is malformed.")
    elif config.audience is not None and config.audience not in audiences:
        raise Unauthorized("The token is not meant for this service (audience).")


def decode_token(token: str, config: AuthConfig, purpose: Purpose = "api") -> Principal:
    """Verify the signature, expiry, issuer and audience and read the contract's claims; Unauthorized
    otherwise. A stream token passes only for `purpose="stream"`."""
    try:
        header = jwt.get_unverified_header(token)
        # the audience is checked below: a stream token's differs from the API's
        options: Any = {"require": ["exp", "sub"], "verify_aud": False}
        if header.get("alg") == "RS256" and config.jwks_url:
            key: Any = _jwks_client(config.jwks_url).get_signing_key_from_jwt(token).key
            claims = jwt.decode(token, key, algorithms=["RS256"], issuer=config.issuer, options=options)
        else:
            claims = _decode_hs256(token, header.get("kid"), config, options)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.") from exc
    except jwt.PyJWKClientConnectionError as exc:  # our key source is down, not the caller's fault
        log.warning("JWKS unreachable: %s", exc)
        raise Unavailable("The token cannot be verified right now; try again.") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized("The token is not valid (signature, key, expiry, issuer or claims).") from exc
    _check_audience(claims, config, purpose)
    org_kind, org_code, scope = claims.get("org_kind"), claims.get("org_code"), claims.get("scope", "")
    if org_kind not in ORG_KINDS or not isinstance(org_code, str) or not org_code or not isinstance(scope, str):
        raise Unauthorized("The token lacks valid org_kind, org_code or scope claims.")
    return Principal(str(claims["sub"]), org_kind, org_code, frozenset(scope.split()), float(claims["exp"]))


async def verify_token(token: str, config: AuthConfig, purpose: Purpose = "api") -> Principal:
    """`decode_token`, off the event loop when a JWKS may be fetched (PyJWKClient does so synchronously)."""
    if config.jwks_url:
        return await asyncio.to_thread(decode_token, token, config, purpose)
    return decode_token(token, config, purpose)


def mint_token(
    *,
    secret: str,
    org_kind: str,
    org_code: str,
    scopes: list[str] | str,
    sub: str | None = None,
    ttl: int = 3600,
    kid: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """An HS256 token for local use and tests; `claims` adds or overrides claims (`iss`, `aud`, ...)."""
    scope = scopes if isinstance(scopes, str) else " ".join(scopes)
    now = int(time.time())
    body = {
        "sub": sub or f"{org_kind}:{org_code}",
        "org_kind": org_kind,
        "org_code": org_code,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        **(claims or {}),
    }
    return jwt.encode(body, secret, algorithm="HS256", headers={"kid": kid} if kid is not None else None)


def mint_stream_token(config: AuthConfig, parent: Principal, *, scope: str, ttl: int) -> tuple[str, int]:
    """A token that opens the metrics stream only, signed with the current key, expiring within `ttl`
    seconds and never after `parent`: (token, seconds it lives)."""
    lifetime = max(0, math.floor(min(ttl, parent.expires_at - time.time())))
    kid, secret = config.signing_key
    claims: dict[str, Any] = {"aud": STREAM_AUDIENCE, "typ": STREAM_TYPE}
    if config.issuer:
        claims["iss"] = config.issuer
    token = mint_token(
        secret=secret,
        org_kind=parent.org_kind,
        org_code=parent.org_code,
        scopes=[scope],
        sub=parent.sub,
        ttl=lifetime,
        kid=kid,
        claims=claims,
    )
    return token, lifetime


def optional_bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case), else None: for a
    route that has another way in (the stream's `access_token` parameter)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if token and scheme.lower() == "bearer" else None


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case), else 401."""
    token = optional_bearer_token(authorization)
    if token is None:
        raise Unauthorized("An `Authorization: Bearer <JWT>` header is required.")
    return token


class BearerToken(HTTPBearer):
    """The HTTP Bearer security scheme in the OpenAPI document; as a dependency, `bearer_token`."""

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return bearer_token(request.headers.get("authorization"))


bearer = BearerToken(auto_error=False, scheme_name="HTTPBearer", description="A JWT: `Authorization: Bearer <token>`.")
BearerTokenDep = Annotated[str, Depends(bearer)]


async def current_principal(request: Request, token: BearerTokenDep) -> Principal:
    return await verify_token(token, request.app.state.auth)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scope(scope: str) -> Any:
    """Dependency: the caller's token carries `scope` (or `admin` for an hq body)."""

    async def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"The token lacks the `{scope}` scope.")
        return principal

    return Depends(_check)
