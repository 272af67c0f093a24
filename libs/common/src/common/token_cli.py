"""`exchange-token`: mint a local HS256 token for a body and scopes, signed as the services sign theirs."""

from __future__ import annotations

import argparse
import os
import sys

from common.auth import ORG_KINDS, SCOPES, mint_token
from common.settings import ServiceSettings


def main(argv: list[str] | None = None) -> None:
    """`exchange-token`: mint a local HS256 token for a body and scopes."""
    parser = argparse.ArgumentParser(prog="exchange-token", description=main.__doc__)
    parser.add_argument("--kind", required=True, choices=ORG_KINDS)
    parser.add_argument("--code", required=True, help="440000, CMES or HQ")
    parser.add_argument("--scope", action="append", required=True, choices=SCOPES)
    parser.add_argument("--sub")
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default one day)")
    args = parser.parse_args(argv)
    # the services' own rules: the current key of EXCHANGE_JWT_KEYS, else EXCHANGE_JWT_SECRET; the issuer
    settings = ServiceSettings(environment=os.environ.get("EXCHANGE_ENVIRONMENT", "development"))
    kid, secret = settings.signing_key
    claims = {"iss": settings.jwt_issuer} if settings.jwt_issuer else None
    token = mint_token(
        secret=secret,
        org_kind=args.kind,
        org_code=args.code,
        scopes=args.scope,
        sub=args.sub,
        ttl=args.ttl,
        kid=kid,
        claims=claims,
    )
    sys.stdout.write(token + "\n")
