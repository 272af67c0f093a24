"""Merging a duplicate organization (admins only) moves its agreements and memberships to the survivor
and publishes what changed; memberships are recorded, listed and ended."""

from __future__ import annotations

from ..conftest import agreement


async def test_merge_moves_agreements_and_memberships(service, headers):
    hq, admin = headers(), headers("hq", "HQ", "admin")
    survivor = await service.create_organization(hq, name="Science Council of Japan", country="JP", kind="academy")
    duplicate = await service.create_organization(hq, name="SCJ Tokyo", name_zh=None, country="JP", kind="academy")
    other = await service.create_organization(hq)
    signed = await service.client.post(
        "/v1/partners/agreements", json=agreement([duplicate["id"], other["id"]]), headers=headers("province", "440000")
    )
    both = await service.client.post(
        "/v1/partners/agreements", json=agreement([duplicate["id"], survivor["id"]]), headers=hq
    )
    member = await service.client.post(
        "/v1/partners/memberships", json={"organization_id": duplicate["id"], "since": "2016-01-01"}, headers=hq
    )
    assert signed.status_code == both.status_code == member.status_code == 201
    url = f"/v1/partners/organizations/{survivor['id']}/merge"
    refused = await service.client.post(url, json={"duplicate_id": duplicate["id"]}, headers=hq)
    assert refused.status_code == 403
    merged = await service.client.post(url, json={"duplicate_id": duplicate["id"]}, headers=admin)
    assert merged.status_code == 200, merged.text
    assert merged.json()["agreements_moved"] == 2 and merged.json()["memberships_moved"] == 1
    gone = (await service.client.get(f"/v1/partners/organizations/{duplicate['id']}", headers=hq)).json()
    assert gone["status"] == "merged" and gone["merged_into"] == survivor["id"] and gone["version"] == 2
    moved = (await service.client.get(f"/v1/partners/agreements/{signed.json()['id']}", headers=hq)).json()
    assert moved["partner_org_ids"] == [survivor["id"], other["id"]] and moved["version"] == 2
    deduplicated = (await service.client.get(f"/v1/partners/agreements/{both.json()['id']}", headers=hq)).json()
    assert deduplicated["partner_org_ids"] == [survivor["id"]]
    org_messages = await service.messages_for(duplicate["id"], expected=2)
    assert org_messages[-1]["type"] == "exchange.organization.merged"
    assert org_messages[-1]["data"]["merged_into"] == survivor["id"]
    agreement_messages = await service.messages_for(signed.json()["id"], expected=2)
    assert agreement_messages[-1]["type"] == "exchange.agreement.updated"
    assert agreement_messages[-1]["data"]["partner_org_ids"] == [survivor["id"], other["id"]]
    membership = (await service.client.get(f"/v1/partners/memberships/{member.json()['id']}", headers=hq)).json()
    assert membership["organization_id"] == survivor["id"]
    again = await service.client.post(url, json={"duplicate_id": duplicate["id"]}, headers=admin)
    assert again.status_code == 409
    into_itself = await service.client.post(url, json={"duplicate_id": survivor["id"]}, headers=admin)
    assert into_itself.status_code == 422
    # A merged organization is no partner for new agreements, and its name is free for no one to clash with.
    refused_partner = await service.client.post(
        "/v1/partners/agreements", json=agreement([duplicate["id"]]), headers=hq
    )
    assert refused_partner.status_code == 422


async def test_memberships_record_list_end(service, headers):
    hq = headers()
    society = headers("society", "CMES")
    wfeo = await service.create_organization(hq, name="WFEO", country=None, kind="international_org")
    created = await service.client.post(
        "/v1/partners/memberships", json={"organization_id": wfeo["id"], "since": "2010-05-01"}, headers=society
    )
    assert created.status_code == 201 and created.json()["member"] == {"kind": "society", "code": "CMES"}
    duplicate = await service.client.post(
        "/v1/partners/memberships", json={"organization_id": wfeo["id"], "since": "2012-01-01"}, headers=society
    )
    assert duplicate.status_code == 409 and duplicate.json()["existing_id"] == created.json()["id"]
    listed = await service.client.get(
        "/v1/partners/memberships", params={"organization_id": wfeo["id"], "member": "society:CMES"}, headers=hq
    )
    assert [m["id"] for m in listed.json()["items"]] == [created.json()["id"]]
    url = f"/v1/partners/memberships/{created.json()['id']}/end"
    assert (await service.client.post(url, json={}, headers=headers("society", "CAST"))).status_code == 403
    before = await service.client.post(url, json={"until": "2009-01-01"}, headers=society)
    assert before.status_code == 422
    ended = await service.client.post(url, json={"until": "2025-12-31"}, headers=society | {"If-Match": '"1"'})
    assert ended.status_code == 200 and ended.json()["status"] == "ended" and ended.json()["until"] == "2025-12-31"
    assert (await service.client.post(url, json={}, headers=society)).status_code == 409
    messages = await service.messages_for(created.json()["id"], expected=2)
    assert [m["type"] for m in messages] == ["exchange.membership.recorded", "exchange.membership.ended"]
