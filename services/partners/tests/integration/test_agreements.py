"""Agreements over HTTP: sign (idempotent by external_ref), renew, terminate, will_not_renew, the
expiring list, renewal notices at once inside a window, the audit history, signed documents, and who may
change what."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest

from ..conftest import agreement

TODAY = date(2026, 3, 1)


@pytest.fixture(scope="module", autouse=True)
def fixed_today(service):
    service.app.state.partners.today = lambda: TODAY


@pytest.fixture(scope="module")
async def partners(service, headers):
    return [(await service.create_organization(headers()))["id"] for _ in range(2)]


async def test_sign_is_idempotent_by_external_ref(service, headers, partners):
    writer = headers("province", "440000")
    body = agreement(partners)
    first = await service.client.post("/v1/partners/agreements", json=body, headers=writer)
    assert first.status_code == 201, first.text
    state = first.json()
    assert state["signed_by"] == {"kind": "province", "code": "440000"} and state["status"] == "active"
    assert state["version"] == 1 and first.headers["etag"] == '"1"'
    again = await service.client.post("/v1/partners/agreements", json=body, headers=writer)
    assert again.status_code == 200 and again.json() == state
    changed = await service.client.post("/v1/partners/agreements", json=body | {"title": "Other"}, headers=writer)
    assert changed.status_code == 409 and changed.json()["existing_id"] == state["id"]
    # The same reference of another body is another agreement.
    other = await service.client.post("/v1/partners/agreements", json=body, headers=headers("province", "110000"))
    assert other.status_code == 201 and other.json()["id"] != state["id"]
    messages = await service.messages_for(state["id"], expected=1)
    assert [m["type"] for m in messages] == ["exchange.agreement.signed"]


async def test_renew_terminate_and_history(service, headers, partners):
    writer = headers("society", "CMES")
    state = (await service.client.post("/v1/partners/agreements", json=agreement(partners), headers=writer)).json()
    url = f"/v1/partners/agreements/{state['id']}"
    backwards = await service.client.post(f"{url}/renew", json={"expires_on": "2030-01-01"}, headers=writer)
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["loc"] == ["body", "expires_on"]
    renewed = await service.client.post(
        f"{url}/renew", json={"expires_on": "2040-05-09"}, headers=writer | {"If-Match": '"1"'}
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expires_on"] == "2040-05-09" and renewed.json()["version"] == 2
    assert renewed.json()["renewals"] == [
        {"renewed_on": TODAY.isoformat(), "previous_expires_on": "2035-05-09", "expires_on": "2040-05-09"}
    ]
    no_reason = await service.client.post(f"{url}/terminate", json={"reason": "  "}, headers=writer)
    assert no_reason.status_code == 422
    ended = await service.client.post(f"{url}/terminate", json={"reason": "Partner dissolved"}, headers=writer)
    assert ended.status_code == 200 and ended.json()["status"] == "terminated"
    assert ended.json()["terminated_on"] == TODAY.isoformat()
    for path, payload in (("renew", {"expires_on": "2045-01-01"}), ("terminate", {"reason": "again"})):
        again = await service.client.post(f"{url}/{path}", json=payload, headers=writer)
        assert again.status_code == 409, path
    messages = await service.messages_for(state["id"], expected=3)
    assert [m["type"] for m in messages] == [
        "exchange.agreement.signed",
        "exchange.agreement.renewed",
        "exchange.agreement.terminated",
    ]
    assert [m["data"]["version"] for m in messages] == [1, 2, 3]
    history = (await service.client.get(f"{url}/history", headers=writer)).json()["items"]
    assert [h["action"] for h in history] == ["sign", "renew", "terminate"]
    assert history[1]["changes"]["expires_on"] == {"old": "2035-05-09", "new": "2040-05-09"}
    assert history[2]["actor"]["code"] == "CMES" and history[2]["changes"]["status"]["new"] == "terminated"
    page = (await service.client.get(f"{url}/history", params={"limit": 2}, headers=writer)).json()
    rest = (await service.client.get(f"{url}/history", params={"cursor": page["next_cursor"]}, headers=writer)).json()
    assert [h["action"] for h in page["items"] + rest["items"]] == ["sign", "renew", "terminate"]


async def test_only_the_signer_or_an_admin_changes_an_agreement(service, headers, partners):
    state = (
        await service.client.post(
            "/v1/partners/agreements", json=agreement(partners), headers=headers("province", "440000")
        )
    ).json()
    url = f"/v1/partners/agreements/{state['id']}"
    for method, path, payload in (
        ("PATCH", "", {"title": "Mine now"}),
        ("POST", "/renew", {"expires_on": "2040-01-01"}),
        ("POST", "/terminate", {"reason": "no"}),
    ):
        response = await service.client.request(method, url + path, json=payload, headers=headers("province", "110000"))
        assert response.status_code == 403, (path, response.text)
    no_scope = await service.client.patch(
        url, json={"title": "x"}, headers=headers("province", "440000", "reporting:read")
    )
    assert no_scope.status_code == 403
    signing_for_another = await service.client.post(
        "/v1/partners/agreements",
        json=agreement(partners, signed_by={"kind": "province", "code": "110000"}),
        headers=headers("province", "440000"),
    )
    assert signing_for_another.status_code == 403
    admin = await service.client.patch(url, json={"flagship": True}, headers=headers("hq", "HQ", "admin"))
    assert admin.status_code == 200 and admin.json()["flagship"] is True
    assert (await service.client.get(url, headers=headers("province", "110000", "reporting:read"))).status_code == 200


async def test_expiring_list_notices_and_will_not_renew(service, headers, partners):
    writer = headers("province", "310000")
    inside = agreement(partners, expires_on=(TODAY + timedelta(days=60)).isoformat())
    later = agreement(partners, expires_on=(TODAY + timedelta(days=400)).isoformat())
    soon = (await service.client.post("/v1/partners/agreements", json=inside, headers=writer)).json()
    far = (await service.client.post("/v1/partners/agreements", json=later, headers=writer)).json()
    # Signed inside the 90-day window: that window's notice at once, at the unchanged version.
    messages = await service.messages_for(soon["id"], expected=2)
    assert [m["type"] for m in messages] == ["exchange.agreement.signed", "exchange.agreement.expiring"]
    assert messages[1]["data"]["notice_days"] == 90 and messages[1]["data"]["version"] == 1
    listed = await service.client.get(
        "/v1/partners/agreements", params={"expiring_within_days": 90, "signed_by": "province:310000"}, headers=writer
    )
    assert [a["id"] for a in listed.json()["items"]] == [soon["id"]]
    marked = await service.client.patch(
        f"/v1/partners/agreements/{soon['id']}", json={"will_not_renew": True}, headers=writer
    )
    assert marked.status_code == 200 and marked.json()["will_not_renew"] is True
    listed = await service.client.get(
        "/v1/partners/agreements", params={"expiring_within_days": 90, "signed_by": "province:310000"}, headers=writer
    )
    assert [a["id"] for a in listed.json()["items"]] == [soon["id"]]  # still shown: a decision was taken
    scheduler = service.app.state.partners
    result = await scheduler.run_scheduler(today=TODAY + timedelta(days=40))  # 20 days left: would be the 30-day one
    assert result.notices == 0 and result.expired == 0
    assert len(await service.messages_for(far["id"], expected=1)) == 1


async def test_an_agreement_already_over_is_recorded_expired(service, headers, partners):
    body = agreement(partners, signed_on="2015-01-01", expires_on="2020-12-31")
    response = await service.client.post("/v1/partners/agreements", json=body, headers=headers())
    assert response.status_code == 201 and response.json()["status"] == "expired"
    messages = await service.messages_for(response.json()["id"], expected=2)
    assert [m["type"] for m in messages] == ["exchange.agreement.signed", "exchange.agreement.expired"]


async def test_signed_document_upload_and_download(service, headers, partners):
    writer = headers("province", "440000")
    state = (await service.client.post("/v1/partners/agreements", json=agreement(partners), headers=writer)).json()
    url = f"/v1/partners/agreements/{state['id']}/document"
    pdf = b"%PDF-1.7\n" + b"x" * (6 * 1024 * 1024) + b"\n%%EOF"  # over the 5 MiB limit of other routes
    missing = await service.client.get(url, headers=writer)
    assert missing.status_code == 404
    wrong_type = await service.client.put(url, content=pdf, headers=writer | {"Content-Type": "image/png"})
    assert wrong_type.status_code == 415
    not_pdf = await service.client.put(url, content=b"GIF89a", headers=writer | {"Content-Type": "application/pdf"})
    assert not_pdf.status_code == 422
    other = await service.client.put(
        url, content=pdf, headers=headers("province", "110000") | {"Content-Type": "application/pdf"}
    )
    assert other.status_code == 403
    uploaded = await service.client.put(url, content=pdf, headers=writer | {"Content-Type": "application/pdf"})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["document"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert uploaded.json()["document"]["size_bytes"] == len(pdf)
    downloaded = await service.client.get(url, headers=headers("society", "CMES", "reporting:read"))
    assert downloaded.status_code == 200 and downloaded.content == pdf
    assert downloaded.headers["content-type"] == "application/pdf"
    too_large = b"%PDF-" + b"x" * (20 * 1024 * 1024 + 70 * 1024)
    refused = await service.client.put(url, content=too_large, headers=writer | {"Content-Type": "application/pdf"})
    assert refused.status_code == 413
    big_elsewhere = await service.client.post(
        "/v1/partners/agreements",
        content=b"{" + b" " * (6 * 1024 * 1024) + b"}",
        headers=writer | {"Content-Type": "application/json"},
    )
    assert big_elsewhere.status_code == 413  # the other routes keep their limit


async def test_unknown_or_merged_partner_is_refused(service, headers):
    body = agreement(["0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a99"])
    response = await service.client.post("/v1/partners/agreements", json=body, headers=headers())
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "partner_org_ids", "0"]
