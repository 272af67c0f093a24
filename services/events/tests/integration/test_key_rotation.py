"""Key rotation on the events service: tokens of the current and the previous key pass, and a key that is
withdrawn stops passing at once, even for a token the service had remembered as verified."""

from __future__ import annotations

import dataclasses

from common.auth import mint_token

CURRENT = "current-key-0123456789abcdef0123456789"
PREVIOUS = "previous-key-0123456789abcdef012345678"


async def test_a_withdrawn_key_is_refused_even_for_a_remembered_token(service):
    original = service.app.state.auth
    service.app.state.auth = dataclasses.replace(original, keys={"new": CURRENT, "old": PREVIOUS}, current_kid="new")
    try:
        old = mint_token(secret=PREVIOUS, org_kind="province", org_code="440000", scopes="events:write", kid="old")
        new = mint_token(secret=CURRENT, org_kind="province", org_code="440000", scopes="events:write", kid="new")
        for token in (old, new, old):  # the second `old` is answered from the remembered tokens
            response = await service.client.get("/v1/events", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text

        service.app.state.auth = dataclasses.replace(original, keys={"new": CURRENT}, current_kid="new")
        refused = await service.client.get("/v1/events", headers={"Authorization": f"Bearer {old}"})
        assert refused.status_code == 401, refused.text
        kept = await service.client.get("/v1/events", headers={"Authorization": f"Bearer {new}"})
        assert kept.status_code == 200, kept.text
    finally:
        service.app.state.auth = original


async def test_a_stream_token_is_refused_by_the_events_api(service, jwt_secret):
    stream = mint_token(
        secret=jwt_secret,
        org_kind="province",
        org_code="440000",
        scopes="events:write",
        claims={"aud": "exchange-tracker/reporting-stream", "typ": "stream"},
    )
    response = await service.client.get("/v1/events", headers={"Authorization": f"Bearer {stream}"})
    assert response.status_code == 401, response.text
