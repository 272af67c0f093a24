"""Dashboard sessions: the token minted for the EventSource opens the stream and nothing else, cannot
mint another, never outlives the token it was exchanged for, and keeps working when the service checks
an audience or an issuer or signs with rotated keys; verifying it never blocks the event loop."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import common.auth
import jwt
import pytest
import reporting.api.routes
from common.auth import mint_token
from support import prepare, running_service

READ = "reporting:read"


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        make_database, "rep_session", kafka_bootstrap, f"{topic_prefix}session.", jwt_secret, consumer_enabled=False
    )
    async with running_service(settings, token("hq", "HQ", READ)) as svc:
        yield svc


@pytest.fixture
def auth(service) -> Iterator[Any]:
    """Lets a test change how the running service verifies tokens; puts the original back after."""
    original = service.app.state.auth

    def use(**changes: Any) -> Any:
        service.app.state.auth = dataclasses.replace(original, **changes)
        return service.app.state.auth

    yield use
    service.app.state.auth = original


async def session_of(service, authorization: str) -> dict[str, Any]:
    async with service.client(headers={"Authorization": authorization}) as client:
        response = await client.post("/v1/dashboard/session")
        assert response.status_code == 200, response.text
        return dict(response.json())


async def stream_status(service, **params: str) -> int:
    async with (
        service.client(headers={}, timeout=10) as client,
        client.stream("GET", "/v1/metrics/stream", params=params) as response,
    ):
        return response.status_code


async def test_a_session_token_opens_the_stream_and_nothing_else(service, token):
    minted = (await session_of(service, token("hq", "HQ", READ)))["access_token"]
    assert await stream_status(service, access_token=minted) == 200
    bearer = {"Authorization": f"Bearer {minted}"}
    async with service.client(headers=bearer) as client:
        for path in ("/v1/metrics/regions/all", "/v1/regions", "/v1/metrics", "/v1/targets", "/v1/bodies"):
            assert (await client.get(path)).status_code == 401, path
        renewed = await client.post("/v1/dashboard/session")
        assert renewed.status_code == 401  # a session cannot be renewed by itself
        assert renewed.headers["content-type"].startswith("application/problem+json")


async def test_a_session_token_never_outlives_its_parent(service, token):
    parent = token("hq", "HQ", READ, ttl=90)  # shorter than the 10 minutes a session lasts
    session = await session_of(service, parent)
    parent_exp = jwt.decode(parent[7:], options={"verify_signature": False})["exp"]
    minted_exp = jwt.decode(session["access_token"], options={"verify_signature": False})["exp"]
    assert minted_exp <= parent_exp
    assert 0 < session["expires_in"] <= 90


async def test_a_configured_audience_and_issuer_do_not_break_session_tokens(service, auth, jwt_secret):
    auth(audience="exchange-api", issuer="https://id.example.org")
    claims = {"aud": "exchange-api", "iss": "https://id.example.org"}
    parent = mint_token(secret=jwt_secret, org_kind="hq", org_code="HQ", scopes=[READ], claims=claims)
    minted = (await session_of(service, f"Bearer {parent}"))["access_token"]
    assert await stream_status(service, access_token=minted) == 200
    assert await stream_status(service, access_token=parent) == 200  # the API's own token, too
    other = mint_token(secret=jwt_secret, org_kind="hq", org_code="HQ", scopes=[READ], claims={"aud": "elsewhere"})
    assert await stream_status(service, access_token=other) == 401


async def test_sessions_are_signed_with_the_current_key(service, auth):
    current, previous = "current-key-0123456789abcdef0123456789", "previous-key-0123456789abcdef012345678"
    auth(keys={"new": current, "old": previous}, current_kid="new")
    parent = mint_token(secret=previous, org_kind="hq", org_code="HQ", scopes=[READ], kid="old")
    minted = (await session_of(service, f"Bearer {parent}"))["access_token"]
    assert jwt.get_unverified_header(minted)["kid"] == "new"
    assert await stream_status(service, access_token=minted) == 200
    auth(keys={"new": current}, current_kid="new")  # the previous key withdrawn
    assert await stream_status(service, access_token=parent) == 401


async def test_stream_tokens_are_verified_off_the_event_loop_when_a_jwks_may_be_fetched(
    service, auth, token, monkeypatch
):
    auth(jwks_url="http://127.0.0.1:9/jwks.json")  # never fetched: the tokens here are HS256
    minted = (await session_of(service, token("hq", "HQ", READ)))["access_token"]
    threads: list[int] = []
    real = common.auth.decode_token

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(common.auth, "decode_token", recording)
    monkeypatch.setattr(reporting.api.routes, "decode_token", recording, raising=False)
    assert await stream_status(service, access_token=minted) == 200
    assert threads and threading.get_ident() not in threads, threads
