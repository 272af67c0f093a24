"""Token verification through a real app built with the common factory: the issuer, HS256 keys chosen by
`kid` (current and previous accepted, a withdrawn one refused), the secret rules of the settings, and
access-log lines that never carry an `access_token`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from common.auth import CurrentPrincipal, bearer_token, optional_bearer_token
from common.errors import Unauthorized
from common.settings import DEVELOPMENT_SECRET, ServiceSettings
from common.testing.live import free_port
from common.testing.plugin import wait_until
from common.token_cli import main
from common.web import create_service_app
from fastapi import FastAPI

CURRENT = "current-key-0123456789abcdef0123456789"
PREVIOUS = "previous-key-0123456789abcdef012345678"
WITHDRAWN = "withdrawn-key-0123456789abcdef01234567"


def build_app(**settings: Any) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_service_app(
        settings=ServiceSettings(service_name="authtest", **settings), title="t", description="t", lifespan=lifespan
    )

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"org_code": principal.org_code}

    return app


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def signed(secret: str, *, kid: str | None = None, **claims: Any) -> dict[str, str]:
    now = int(time.time())
    body = {"sub": "p", "org_kind": "province", "org_code": "440000", "scope": "", "iat": now, "exp": now + 60}
    headers = {"kid": kid} if kid is not None else None
    return {"Authorization": "Bearer " + jwt.encode({**body, **claims}, secret, algorithm="HS256", headers=headers)}


async def test_the_issuer_is_checked_when_configured() -> None:
    app = build_app(jwt_secret=CURRENT, jwt_issuer="https://id.example.org")
    async with client_of(app) as client:
        assert (await client.get("/me", headers=signed(CURRENT, iss="https://id.example.org"))).status_code == 200
        assert (await client.get("/me", headers=signed(CURRENT, iss="https://elsewhere.example"))).status_code == 401
        assert (await client.get("/me", headers=signed(CURRENT))).status_code == 401  # no iss at all


async def test_keys_are_chosen_by_kid_and_a_withdrawn_key_is_refused() -> None:
    app = build_app(jwt_keys=f"k2={CURRENT},k1={PREVIOUS}", jwt_current_kid="k2")
    async with client_of(app) as client:
        assert (await client.get("/me", headers=signed(CURRENT, kid="k2"))).status_code == 200
        assert (await client.get("/me", headers=signed(PREVIOUS, kid="k1"))).status_code == 200  # previous
        assert (await client.get("/me", headers=signed(WITHDRAWN, kid="k0"))).status_code == 401  # withdrawn
        assert (await client.get("/me", headers=signed(PREVIOUS, kid="k2"))).status_code == 401  # wrong key for kid
        # tokens minted before keys had ids are checked against each accepted key
        assert (await client.get("/me", headers=signed(PREVIOUS))).status_code == 200
        assert (await client.get("/me", headers=signed(WITHDRAWN))).status_code == 401
    assert app.state.auth.signing_key == ("k2", CURRENT)  # new tokens are signed with the current key


def test_the_shared_variables_name_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_JWT_KEYS", f"2025={CURRENT}, 2024={PREVIOUS}")
    monkeypatch.setenv("EXCHANGE_ENVIRONMENT", "production")
    settings = ServiceSettings()
    assert settings.jwt_keys == {"2025": CURRENT, "2024": PREVIOUS}
    assert settings.jwt_current_kid == "2025"  # the first listed, unless EXCHANGE_JWT_CURRENT_KID says
    monkeypatch.setenv("EXCHANGE_JWT_CURRENT_KID", "2024")
    assert ServiceSettings().jwt_current_kid == "2024"
    monkeypatch.setenv("EXCHANGE_JWT_CURRENT_KID", "2023")
    with pytest.raises(ValueError, match="EXCHANGE_JWT_CURRENT_KID"):
        ServiceSettings()


@pytest.mark.parametrize("keys", ["no-equals-sign", "=secret", "k=", f"k={CURRENT},k={PREVIOUS}"])
def test_a_malformed_key_list_is_refused(keys: str) -> None:
    with pytest.raises(ValueError, match="EXCHANGE_JWT_KEYS"):
        ServiceSettings(environment="test", jwt_keys=keys)


def test_a_single_secret_keeps_working_as_the_one_key() -> None:
    settings = ServiceSettings(environment="production", jwt_secret=CURRENT)
    app = build_app(environment="production", jwt_secret=CURRENT)
    assert settings.jwt_keys == {} and app.state.auth.signing_key == (None, CURRENT)


@pytest.mark.parametrize(
    "secrets",
    [
        {"jwt_secret": "x" * 31},
        # with keys, EXCHANGE_JWT_SECRET is not used: every key must be fit for production
        {"jwt_keys": f"new={'x' * 31},old={CURRENT}", "jwt_secret": CURRENT},
        {"jwt_keys": f"new={CURRENT},old={DEVELOPMENT_SECRET}", "jwt_secret": CURRENT},
    ],
)
def test_short_or_public_secrets_are_refused_outside_development(secrets: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="EXCHANGE_JWT"):
        ServiceSettings(environment="production", **secrets)
    assert ServiceSettings(environment="development", **secrets)  # a laptop may use what it likes


def test_a_secret_of_32_bytes_is_enough() -> None:
    assert ServiceSettings(environment="production", jwt_secret="x" * 32).jwt_secret == "x" * 32


def started(server: uvicorn.Server) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(server.started)

    return check


async def test_access_log_lines_never_carry_an_access_token(caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(environment="test", jwt_secret=CURRENT)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info"))
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(started(server), 20)
        with caplog.at_level(logging.INFO, logger="uvicorn.access"):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await client.get("/healthz", params={"access_token": "eyJ.secret-part.sig", "year": "2025"})
                await client.get("/healthz", params={"year": "2024", "access_token": "eyJ.other-secret.sig"})
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 2, lines  # the access log is written, only without the token
    assert all("secret" not in line and "access_token=" in line for line in lines), lines
    assert "year=2025" in lines[0] and "year=2024" in lines[1]


def test_exchange_token_signs_with_the_current_key_and_issuer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXCHANGE_JWT_KEYS", f"old={PREVIOUS},new={CURRENT}")
    monkeypatch.setenv("EXCHANGE_JWT_CURRENT_KID", "new")
    monkeypatch.setenv("EXCHANGE_JWT_ISSUER", "https://id.example.org")
    main(["--kind", "hq", "--code", "HQ", "--scope", "admin"])
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["kid"] == "new"
    claims = jwt.decode(token, CURRENT, algorithms=["HS256"], issuer="https://id.example.org")
    assert claims["org_code"] == "HQ" and claims["scope"] == "admin"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Basic dXNlcg==", None),
        ("Bearer ", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_a_bearer_header_is_parsed_in_one_place(header: str | None, token: str | None) -> None:
    """`optional_bearer_token` for routes with another way in (the stream's `access_token`); `bearer_token`
    for the rest, which refuses what the optional one does not find."""
    assert optional_bearer_token(header) == token
    if token is None:
        with pytest.raises(Unauthorized):
            bearer_token(header)
    else:
        assert bearer_token(header) == token
