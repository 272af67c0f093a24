"""The authorisation matrix: who may create, change, cancel and read which events."""

from __future__ import annotations

import pytest
from common.auth import mint_token

from ..conftest import body

OWNER = ("province", "440000", "events:write")
ACTORS = {
    "owner": OWNER,
    "other_province": ("province", "110000", "events:write"),
    "owner_without_scope": ("province", "440000", "reporting:read"),
    "hq_admin": ("hq", "HQ", "admin"),
    "hq_writer_not_admin": ("hq", "HQ", "events:write"),
    "society": ("society", "CMES", "events:write"),
}
# actor: (create for itself, create naming 440000, change 440000's event, cancel it, read it)
MATRIX = {
    "owner": (201, 201, 200, 200, 200),
    "other_province": (201, 403, 403, 403, 200),
    "owner_without_scope": (403, 403, 403, 403, 200),
    "hq_admin": (201, 201, 200, 200, 200),
    "hq_writer_not_admin": (201, 403, 403, 403, 200),
    "society": (201, 403, 403, 403, 200),
}


def own_body(kind: str, code: str):
    # A province's own event is held in its province; national bodies' events here are online.
    if kind == "province":
        return body(host_province=code)
    return body(type="online", host_province=None)


@pytest.mark.parametrize("actor", sorted(MATRIX))
async def test_matrix(service, token, actor):
    kind, code, *scopes = ACTORS[actor]
    headers = {"Authorization": token(kind, code, *scopes)}
    owner = {"Authorization": token(*OWNER)}
    expected = MATRIX[actor]

    created = await service.client.post("/v1/events", json=own_body(kind, code), headers=headers)
    assert created.status_code == expected[0], created.text
    if created.status_code == 201:
        assert created.json()["organizer"] == {"kind": kind, "code": code}

    named = await service.client.post(
        "/v1/events", json={**body(), "organizer": {"kind": "province", "code": "440000"}}, headers=headers
    )
    assert named.status_code == expected[1], named.text
    if named.status_code == 201:
        assert named.json()["organizer"] == {"kind": "province", "code": "440000"}

    target = (await service.client.post("/v1/events", json=body(), headers=owner)).json()
    url = f"/v1/events/{target['id']}"
    changed = await service.client.patch(url, json={"papers": 1}, headers=headers)
    assert changed.status_code == expected[2], changed.text
    cancelled = await service.client.delete(url, headers=headers)
    assert cancelled.status_code == expected[3], cancelled.text
    read = await service.client.get(url, headers=headers)
    assert read.status_code == expected[4]
    if expected[2] == 403:
        assert read.json()["version"] == 1 and read.json()["status"] == "active"  # nothing changed
    for response in (created, named, changed, cancelled):
        if response.status_code == 403:
            assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer "
        + mint_token(
            secret="another-secret-0123456789abcdef012345",
            org_kind="province",
            org_code="440000",
            scopes="events:write",
        ),
    ],
    ids=["missing", "garbage", "basic", "wrong-secret"],
)
async def test_missing_or_invalid_token_is_401_everywhere(service, token, header):
    headers = {"Authorization": header} if header else {}
    target = (await service.client.post("/v1/events", json=body(), headers={"Authorization": token(*OWNER)})).json()
    url = f"/v1/events/{target['id']}"
    for response in [
        await service.client.post("/v1/events", json=body(), headers=headers),
        await service.client.post("/v1/events/batch", json={"events": [body()]}, headers=headers),
        await service.client.get("/v1/events", headers=headers),
        await service.client.get(url, headers=headers),
        await service.client.patch(url, json={"papers": 1}, headers=headers),
        await service.client.delete(url, headers=headers),
    ]:
        assert response.status_code == 401, response.request.url
        assert response.headers["content-type"] == "application/problem+json"


async def test_expired_token_is_401(service, token):
    response = await service.client.get("/v1/events", headers={"Authorization": token(*OWNER, ttl=-10)})
    assert response.status_code == 401


async def test_hq_admin_acts_for_a_society_and_then_that_society_owns_the_event(service, token):
    admin = {"Authorization": token("hq", "HQ", "admin")}
    sent = {**body(type="online", host_province=None), "organizer": {"kind": "society", "code": "CAST-X"}}
    created = await service.client.post("/v1/events", json=sent, headers=admin)
    assert created.status_code == 201 and created.json()["organizer"] == {"kind": "society", "code": "CAST-X"}
    society = {"Authorization": token("society", "CAST-X", "events:write")}
    changed = await service.client.patch(f"/v1/events/{created.json()['id']}", json={"papers": 2}, headers=society)
    assert changed.status_code == 200
    # the same external_ref by the society itself is the same event (same organizer)
    again = await service.client.post(
        "/v1/events", json={k: v for k, v in sent.items() if k != "organizer"} | {"papers": 2}, headers=society
    )
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


async def test_naming_ones_own_body_is_allowed(service, token):
    sent = {**body(), "organizer": {"kind": "province", "code": "440000"}}
    response = await service.client.post("/v1/events", json=sent, headers={"Authorization": token(*OWNER)})
    assert response.status_code == 201
