"""Attacks and bad input against every service with an API, in one place: the authorisation matrix
(as data: a service is one more table), forged tokens, bodies over the limit on every write route,
the standard security headers, and the audit record readable by `admin` only.

Each service runs in-process on migrated PostgreSQL and the real broker."""

from __future__ import annotations

import base64
import importlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from common.auth import STREAM_AUDIENCE, STREAM_TYPE, mint_token
from common.errors import BodyLimitMiddleware
from common.migrations import upgrade_async

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["events", "partners", "talent", "reporting"]
MAX_BODY = 4096  # every service's body limit here, so going over it is cheap
# One authenticated read per service: forged tokens are tried on it.
PROBE = {
    "events": "/v1/events",
    "partners": "/v1/partners/organizations",
    "talent": "/v1/talent/persons",
    "reporting": "/v1/regions",
}
# Settings of one service only: a JSON sync's own (larger) limit brought down to the test's scale.
EXTRA_SETTINGS: dict[str, dict[str, Any]] = {"talent": {"sync_max_body_bytes": 2 * MAX_BODY}}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def _settings(service: str, **values: Any) -> Any:
    module = importlib.import_module(f"{service}.config")
    cls = next(v for k, v in vars(module).items() if k.endswith("Settings") and k != "ServiceSettings")
    return cls(**values)


APPS: dict[str, Any] = {}  # the apps the fixture below serves, by service


@pytest.fixture(scope="module")
async def apps(
    make_database: Any, kafka_bootstrap: str, topic_prefix: str, jwt_secret: str, tmp_path_factory: Any
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients: dict[str, httpx.AsyncClient] = {}
    managers = []
    try:
        for service in SERVICES:
            url = await make_database(f"attacks_{service}")
            await upgrade_async(url, ROOT / "services" / service)
            extra = {"documents_dir": str(tmp_path_factory.mktemp("docs"))} if service == "partners" else {}
            extra.update(EXTRA_SETTINGS.get(service, {}))
            settings = _settings(
                service,
                database_url=url,
                kafka_bootstrap_servers=kafka_bootstrap,
                topic_prefix=f"{topic_prefix}attacks.",
                topic_partitions=3,
                jwt_secret=jwt_secret,
                environment="test",
                max_body_bytes=MAX_BODY,
                **extra,
            )
            app = APPS[service] = importlib.import_module(f"{service}.entrypoints.app").create_app(settings)
            manager = LifespanManager(app, startup_timeout=60, shutdown_timeout=30)
            await manager.__aenter__()
            managers.append(manager)
            transport = httpx.ASGITransport(app=manager.app)
            clients[service] = httpx.AsyncClient(transport=transport, base_url=f"http://{service}.test", timeout=30)
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        for manager in reversed(managers):
            await manager.__aexit__(None, None, None)


def bearer(secret: str, kind: str, code: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(secret=secret, org_kind=kind, org_code=code, scopes=list(scopes))}


def assert_problem(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, f"{answer.request.method} {answer.request.url.path}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    assert answer.json()["status"] == status


# -- forged tokens ---------------------------------------------------------------------------------------
def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "hq:HQ", "org_kind": "hq", "org_code": "HQ", "scope": "admin", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


FORGED: dict[str, Callable[[str], str]] = {
    "alg none": lambda _secret: _unsigned(_claims()),
    "wrong key": lambda _secret: jwt.encode(_claims(), "another-secret-of-at-least-32-bytes!!", algorithm="HS256"),
    "expired": lambda secret: jwt.encode(_claims(exp=int(time.time()) - 60), secret, algorithm="HS256"),
    "no exp": lambda secret: jwt.encode(_claims(exp=None), secret, algorithm="HS256"),
    "no sub": lambda secret: jwt.encode(_claims(sub=None), secret, algorithm="HS256"),
    "no org_kind": lambda secret: jwt.encode(_claims(org_kind=None), secret, algorithm="HS256"),
    "unknown org_kind": lambda secret: jwt.encode(_claims(org_kind="root"), secret, algorithm="HS256"),
    "HS512 with the right secret": lambda secret: jwt.encode(_claims(), secret, algorithm="HS512"),
    "stream-only token": lambda secret: jwt.encode(
        _claims(aud=STREAM_AUDIENCE, typ=STREAM_TYPE, scope="reporting:read"), secret, algorithm="HS256"
    ),
    "garbage": lambda _secret: "not-a-jwt",
}


@pytest.mark.parametrize("service", SERVICES)
async def test_forged_tokens_get_401_everywhere(apps, jwt_secret, service):
    client = apps[service]
    for name, forge in FORGED.items():
        answer = await client.get(PROBE[service], headers={"Authorization": f"Bearer {forge(jwt_secret)}"})
        assert answer.status_code == 401, f"{service}, {name}: {answer.status_code} {answer.text}"
        assert_problem(answer, 401)
    assert (await client.get(PROBE[service], headers=bearer(jwt_secret, "hq", "HQ", "admin"))).status_code == 200


# -- bodies over the limit -------------------------------------------------------------------------------
def _write_routes(app: Any) -> list[tuple[str, str, int]]:
    """(method, concrete path, limit) of every write operation in the app's OpenAPI document."""
    body_limit = next(m for m in app.user_middleware if m.cls is BodyLimitMiddleware)
    limiter = BodyLimitMiddleware(app, **body_limit.kwargs)
    routes = []
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b", path)
        for method in operations:
            if method in ("post", "put", "patch"):
                scope = {"method": method.upper(), "path": concrete, "headers": []}
                limit = limiter.limit_for(scope, limiter.max_bytes) if limiter.limit_for else limiter.max_bytes
                routes.append((method.upper(), concrete, limit))
    return routes


@pytest.mark.parametrize("service", SERVICES)
async def test_every_write_route_refuses_a_body_over_the_limit_with_413(apps, jwt_secret, service):
    client = apps[service]
    routes = _write_routes(APPS[service])
    assert routes, service
    headers = bearer(jwt_secret, "hq", "HQ", "admin")
    for method, path, limit in routes:
        body = b'{"x": "' + b"a" * (limit + 1) + b'"}'
        answer = await client.request(
            method, path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert_problem(answer, 413)

        # streamed without Content-Length too
        async def chunks(body: bytes = body) -> AsyncIterator[bytes]:
            for i in range(0, len(body), 65536):
                yield body[i : i + 65536]

        answer = await client.request(
            method, path, content=chunks(), headers={**headers, "content-type": "application/json"}
        )
        assert_problem(answer, 413)


# -- security headers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", SERVICES)
async def test_every_answer_carries_the_security_headers(apps, jwt_secret, service):
    client = apps[service]
    answers = [
        await client.get("/healthz"),
        await client.get(PROBE[service]),  # 401
        await client.get(PROBE[service], headers=bearer(jwt_secret, "hq", "HQ", "admin")),
        await client.get("/no/such/path"),
        await client.get("/openapi.json"),
    ]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (service, answer.request.url.path, name)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "access-control-allow-origin" not in answer.headers  # no dashboard origin configured


# -- the authorisation matrix ----------------------------------------------------------------------------
TOKENS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "none": ("", "", ()),
    "guangdong writer": ("province", "440000", ("events:write",)),
    "beijing writer": ("province", "110000", ("events:write",)),
    "guangdong partners": ("province", "440000", ("partners:write",)),
    "beijing partners": ("province", "110000", ("partners:write",)),
    "society partners": ("society", "CAST-CES", ("partners:write",)),
    "reporting reader": ("province", "440000", ("reporting:read",)),
    "hq reader": ("hq", "HQ", ("reporting:read",)),
    "talent syncer": ("society", "CAST-CES", ("talent:sync",)),
    "other society syncer": ("society", "CMES", ("talent:sync",)),
    "society reader": ("society", "CAST-CES", ("reporting:read",)),
    "guangdong talent": ("province", "440000", ("talent:sync",)),
    "admin": ("hq", "HQ", ("admin",)),
}


@dataclass(frozen=True)
class Case:
    """One request by one token; `{event}`, `{org}`, `{agreement}` and `{membership}` in the path are
    records Guangdong made in the `setup` below, `{person}` a person society CAST-CES synced."""

    method: str
    path: str
    token: str
    expected: int
    body: dict[str, Any] | None = None


EVENT = {
    "external_ref": "attack-1",
    "title": "China–Germany Forum",
    "type": "forum",
    "start_date": "2025-05-10",
    "end_date": "2025-05-12",
    "host_country": "CN",
    "host_province": "440000",
}
ORGANIZATION = {"name": "Academy of Attacks", "country": "DE", "kind": "academy"}
PERSON = {"external_id": "CES-1", "name": "Li Attack", "email": "li@example.org", "country": "CN", "province": "440000"}
SYNC = {"mode": "delta", "records": [PERSON | {"name": "Hijacked"}]}

MATRIX: dict[str, list[Case]] = {
    "events": [
        Case("POST", "/v1/events", "none", 401, EVENT),
        Case("GET", "/v1/events", "none", 401),
        Case("POST", "/v1/events", "reporting reader", 403, EVENT),
        Case("POST", "/v1/events", "guangdong partners", 403, EVENT),
        Case("POST", "/v1/events/batch", "reporting reader", 403, {"events": [EVENT]}),
        Case("POST", "/v1/events", "talent syncer", 403, EVENT),
        # a province against another's event: refused, and the event unchanged (checked after)
        Case("PATCH", "/v1/events/{event}", "beijing writer", 403, {"title": "Hijacked"}),
        Case("DELETE", "/v1/events/{event}", "beijing writer", 403),
        Case("PATCH", "/v1/events/{event}", "reporting reader", 403, {"title": "Hijacked"}),
        Case("DELETE", "/v1/events/{event}", "none", 401),
        Case("GET", "/v1/events/{event}", "guangdong writer", 200),
        Case("GET", "/v1/events/audit?entity=event&entity_id={event}", "guangdong writer", 403),
        Case("GET", "/v1/events/audit?entity=event&entity_id={event}", "none", 401),
        Case("GET", "/v1/events/audit?entity=event&entity_id={event}", "admin", 200),
    ],
    "partners": [
        Case("POST", "/v1/partners/organizations", "none", 401, ORGANIZATION),
        Case("POST", "/v1/partners/organizations", "reporting reader", 403, ORGANIZATION),
        Case("POST", "/v1/partners/organizations", "guangdong writer", 403, ORGANIZATION),
        # a body changing an agreement it did not sign
        Case("PATCH", "/v1/partners/agreements/{agreement}", "beijing partners", 403, {"title": "Hijacked"}),
        Case("PATCH", "/v1/partners/agreements/{agreement}", "society partners", 403, {"title": "Hijacked"}),
        Case("POST", "/v1/partners/agreements/{agreement}/terminate", "beijing partners", 403, {"reason": "x"}),
        Case(
            "POST", "/v1/partners/agreements/{agreement}/renew", "beijing partners", 403, {"expires_on": "2040-01-01"}
        ),
        Case("POST", "/v1/partners/memberships/{membership}/end", "beijing partners", 403, {}),
        Case("POST", "/v1/partners/organizations/{org}/merge", "guangdong partners", 403, {"duplicate_id": "{org}"}),
        Case("PATCH", "/v1/partners/agreements/{agreement}", "reporting reader", 403, {"title": "Hijacked"}),
        Case("GET", "/v1/partners/audit?entity=agreement&entity_id={agreement}", "guangdong partners", 403),
        Case("GET", "/v1/partners/audit?entity=agreement&entity_id={agreement}", "none", 401),
        Case("GET", "/v1/partners/audit?entity=agreement&entity_id={agreement}", "admin", 200),
    ],
    "talent": [
        Case("POST", "/v1/talent/sync", "none", 401, SYNC),
        Case("GET", "/v1/talent/persons", "none", 401),
        Case("GET", "/v1/talent/persons/{person}", "none", 401),
        Case("DELETE", "/v1/talent/persons/{person}", "none", 401),
        # reporting tokens (a province's, hq's, a society's own) write nothing here
        Case("POST", "/v1/talent/sync", "reporting reader", 403, SYNC),
        Case("POST", "/v1/talent/sync", "hq reader", 403, SYNC),
        Case("POST", "/v1/talent/sync", "society reader", 403, SYNC),
        Case("DELETE", "/v1/talent/persons/{person}", "society reader", 403),
        Case("DELETE", "/v1/talent/persons/{person}", "hq reader", 403),
        # province tokens: no talent scope, or the scope but not a society
        Case("POST", "/v1/talent/sync", "guangdong writer", 403, SYNC),
        Case("POST", "/v1/talent/sync", "guangdong talent", 403, SYNC),
        Case("DELETE", "/v1/talent/persons/{person}", "guangdong talent", 403),
        # a society against another society's people: its pool is not theirs to sync or erase
        Case("POST", "/v1/talent/sync", "other society syncer", 403, SYNC | {"society": "CAST-CES"}),
        Case("DELETE", "/v1/talent/persons/{person}", "other society syncer", 403),
        Case("POST", "/v1/talent/sync", "talent syncer", 403, SYNC | {"society": "CMES"}),
        # other tokens read only the public shape (checked after); the society's own reads it whole
        Case("GET", "/v1/talent/persons/{person}", "other society syncer", 200),
        Case("GET", "/v1/talent/persons/{person}", "talent syncer", 200),
    ],
    "reporting": [
        Case("GET", "/v1/regions", "none", 401),
        Case("GET", "/v1/regions", "guangdong writer", 403),
        Case("GET", "/v1/bodies", "talent syncer", 403),
        Case("GET", "/v1/reports/annual?year=2025", "guangdong partners", 403),
        Case("POST", "/v1/dashboard/session", "guangdong writer", 403),
        Case("POST", "/v1/dashboard/session", "none", 401),
        Case("GET", "/v1/regions", "reporting reader", 200),
        # reporting tokens cannot write anywhere (the events and partners rows above), nor here
        Case("POST", "/v1/regions", "hq reader", 405),
    ],
}


async def _setup(apps: dict[str, httpx.AsyncClient], secret: str) -> dict[str, str]:
    """Records made by Guangdong (and one organization by HQ) that the matrix attacks."""
    guangdong = bearer(secret, "province", "440000", "events:write", "partners:write")
    admin = bearer(secret, "hq", "HQ", "admin")
    event = await apps["events"].post("/v1/events", json=EVENT | {"external_ref": "setup-1"}, headers=guangdong)
    assert event.status_code == 201, event.text
    org = await apps["partners"].post("/v1/partners/organizations", json=ORGANIZATION, headers=admin)
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    agreement_body = {
        "external_ref": "AGR-attack",
        "title": "MoU",
        "kind": "mou",
        "partner_org_ids": [org_id],
        "signed_on": "2025-05-10",
        "expires_on": "2035-05-09",
    }
    agreement = await apps["partners"].post("/v1/partners/agreements", json=agreement_body, headers=guangdong)
    assert agreement.status_code == 201, agreement.text
    membership = await apps["partners"].post(
        "/v1/partners/memberships", json={"organization_id": org_id, "since": "2024-01-01"}, headers=guangdong
    )
    assert membership.status_code == 201, membership.text
    society = bearer(secret, "society", "CAST-CES", "talent:sync")
    synced = await apps["talent"].post("/v1/talent/sync", json={"mode": "delta", "records": [PERSON]}, headers=society)
    assert synced.status_code == 200 and synced.json()["created"] == 1, synced.text
    (person,) = (await apps["talent"].get("/v1/talent/persons", headers=society)).json()["items"]
    return {
        "event": event.json()["id"],
        "org": org_id,
        "agreement": agreement.json()["id"],
        "membership": membership.json()["id"],
        "person": person["id"],
    }


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


async def test_the_authorisation_matrix(apps, jwt_secret):
    ids = await _setup(apps, jwt_secret)
    before = {
        "event": (
            await apps["events"].get(f"/v1/events/{ids['event']}", headers=bearer(jwt_secret, "hq", "HQ", "admin"))
        ).json(),
        "agreement": (
            await apps["partners"].get(
                f"/v1/partners/agreements/{ids['agreement']}", headers=bearer(jwt_secret, "hq", "HQ", "admin")
            )
        ).json(),
    }
    failures = []
    for service, cases in MATRIX.items():
        for case in cases:
            kind, code, scopes = TOKENS[case.token]
            headers = bearer(jwt_secret, kind, code, *scopes) if kind else {}
            answer = await apps[service].request(
                case.method, _fill(case.path, ids), json=_fill(case.body, ids), headers=headers
            )
            if answer.status_code != case.expected:
                failures.append(
                    f"{service} {case.method} {case.path} as {case.token}: {answer.status_code} {answer.text[:200]}"
                )
            elif case.expected >= 400:
                assert_problem(answer, case.expected)
    assert not failures, "\n".join(failures)
    admin = bearer(jwt_secret, "hq", "HQ", "admin")
    assert (await apps["events"].get(f"/v1/events/{ids['event']}", headers=admin)).json() == before["event"]
    after = (await apps["partners"].get(f"/v1/partners/agreements/{ids['agreement']}", headers=admin)).json()
    assert after == before["agreement"]
    await _assert_person_untouched(apps["talent"], jwt_secret, ids["person"])


async def _assert_person_untouched(talent: httpx.AsyncClient, secret: str, person_id: str) -> None:
    """After the matrix: the person is as synced (version 1, not erased, nothing hijacked), the other
    society's pool is empty, and every reader but the society's own and admin sees no personal field."""
    own_token = bearer(secret, "society", "CAST-CES", "talent:sync")
    own = (await talent.get(f"/v1/talent/persons/{person_id}", headers=own_token)).json()
    assert (own["version"], own["deleted"], own["name"], own["email"]) == (1, False, PERSON["name"], PERSON["email"])
    other = bearer(secret, "society", "CMES", "talent:sync")
    assert (await talent.get("/v1/talent/persons?society=CMES", headers=other)).json()["items"] == []
    for token in ("other society syncer", "society reader", "guangdong writer"):
        kind, code, scopes = TOKENS[token]
        headers = bearer(secret, kind, code, *scopes)
        shown = [(await talent.get(f"/v1/talent/persons/{person_id}", headers=headers)).json()]
        shown += (await talent.get("/v1/talent/persons", headers=headers)).json()["items"]
        for person in shown:
            assert person["id"] == person_id, (token, person)
            leaked = {"name", "email", "external_id", "name_en", "orcid", "affiliation"} & set(person)
            assert not leaked, (token, leaked)


async def test_every_partners_write_is_in_the_audit_record_with_its_acting_body(apps, jwt_secret):
    admin = bearer(jwt_secret, "hq", "HQ", "admin")
    guangdong = bearer(jwt_secret, "province", "440000", "partners:write")
    org = (
        await apps["partners"].post(
            "/v1/partners/organizations", json=ORGANIZATION | {"name": "Audited"}, headers=admin
        )
    ).json()
    agreement = await apps["partners"].post(
        "/v1/partners/agreements",
        json={
            "external_ref": "AGR-audited",
            "title": "MoU",
            "kind": "mou",
            "partner_org_ids": [org["id"]],
            "signed_on": "2025-05-10",
        },
        headers=guangdong,
    )
    assert agreement.status_code == 201, agreement.text
    agreement_id = agreement.json()["id"]
    changed = await apps["partners"].patch(
        f"/v1/partners/agreements/{agreement_id}", json={"title": "MoU 2"}, headers=guangdong
    )
    assert changed.status_code == 200, changed.text
    audit = await apps["partners"].get(f"/v1/partners/audit?entity=agreement&entity_id={agreement_id}", headers=admin)
    assert audit.status_code == 200, audit.text
    entries = audit.json()["items"]
    assert [e["action"] for e in entries] == ["sign", "update"], entries
    assert all(e["actor"]["kind"] == "province" and e["actor"]["code"] == "440000" for e in entries)
    assert entries[1]["changes"]["title"] == {"old": "MoU", "new": "MoU 2"}
    org_audit = await apps["partners"].get(
        f"/v1/partners/audit?entity=organization&entity_id={org['id']}", headers=admin
    )
    assert org_audit.json()["items"][0]["actor"] == {"sub": "hq:HQ", "kind": "hq", "code": "HQ"}


async def test_every_events_write_is_in_the_audit_record_with_its_acting_body(apps, jwt_secret):
    admin = bearer(jwt_secret, "hq", "HQ", "admin")
    guangdong = bearer(jwt_secret, "province", "440000", "events:write")
    created = await apps["events"].post("/v1/events", json=EVENT | {"external_ref": "audited-1"}, headers=guangdong)
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    batch = await apps["events"].post(
        "/v1/events/batch", json={"events": [EVENT | {"external_ref": "audited-2"}]}, headers=guangdong
    )
    assert batch.json()["created"] == 1, batch.text
    changed = await apps["events"].patch(f"/v1/events/{event_id}", json={"papers": 3}, headers=guangdong)
    assert changed.status_code == 200, changed.text
    stale = await apps["events"].patch(
        f"/v1/events/{event_id}", json={"papers": 4}, headers=guangdong | {"If-Match": '"1"'}
    )
    assert stale.status_code == 412, stale.text
    cancelled = await apps["events"].delete(f"/v1/events/{event_id}", headers=admin)
    assert cancelled.status_code == 200, cancelled.text

    audit = await apps["events"].get(f"/v1/events/audit?entity=event&entity_id={event_id}", headers=admin)
    assert audit.status_code == 200, audit.text
    entries = audit.json()["items"]
    assert [e["action"] for e in entries] == ["record", "update", "cancel"], entries
    assert [e["actor"]["kind"] + ":" + e["actor"]["code"] for e in entries] == ["province:440000"] * 2 + ["hq:HQ"]
    assert entries[1]["changes"] == {"papers": {"old": EVENT.get("papers", 0), "new": 3}}
    batch_id = batch.json()["items"][0]["id"]
    batch_audit = await apps["events"].get(f"/v1/events/audit?entity=event&entity_id={batch_id}", headers=admin)
    [entry] = batch_audit.json()["items"]
    assert entry["actor"] == {"sub": "province:440000", "kind": "province", "code": "440000"}
    assert entry["action"] == "record" and entry["changes"] == {}  # a new event's entry lists no fields
    forbidden = await apps["events"].get(f"/v1/events/audit?entity=event&entity_id={event_id}", headers=guangdong)
    assert forbidden.status_code == 403
