"""Organizations: register, read, update (creator or admin), list with filters, duplicates → 409 naming the
existing id, every change published with its whole state."""

from __future__ import annotations

from ..conftest import organization


async def test_register_read_update_and_publish(service, headers):
    hq = headers()
    created = await service.create_organization(
        hq, name="The Royal Society", name_zh="英国皇家学会", country="GB", ror_id="https://ror.org/03wnrjx87"
    )
    assert created["ror_id"] == "03wnrjx87" and created["version"] == 1 and created["status"] == "active"
    assert created["created_by"] == {"kind": "hq", "code": "HQ"}
    read = await service.client.get(f"/v1/partners/organizations/{created['id']}", headers=hq)
    assert read.status_code == 200 and read.headers["etag"] == '"1"' and read.json() == created
    stale = await service.client.patch(
        f"/v1/partners/organizations/{created['id']}",
        json={"website": "https://royalsociety.org"},
        headers=hq | {"If-Match": '"7"'},
    )
    assert stale.status_code == 412 and stale.json()["current_version"] == 1
    changed = await service.client.patch(
        f"/v1/partners/organizations/{created['id']}",
        json={"website": "https://royalsociety.org"},
        headers=hq | {"If-Match": '"1"'},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    messages = await service.messages_for(created["id"], expected=2)
    assert [m["type"] for m in messages] == ["exchange.organization.registered", "exchange.organization.updated"]
    assert messages[1]["data"]["website"] == "https://royalsociety.org" and messages[1]["data"]["version"] == 2


async def test_duplicates_answer_409_with_the_existing_id(service, headers):
    hq = headers()
    first = await service.create_organization(
        hq, name="Japan Science and Technology Agency", name_zh="日本科学技术振兴机构", country="JP", ror_id="00097mb19"
    )
    cases = [
        organization(name="JAPAN SCIENCE & TECHNOLOGY AGENCY, Inc.", name_zh=None, country="JP"),
        organization(name="Another name", name_zh="日本科学技术振兴机构", country="JP"),
        organization(name="Yet another", name_zh=None, country="US", ror_id="00097mb19"),
    ]
    for body in cases:
        response = await service.client.post("/v1/partners/organizations", json=body, headers=hq)
        assert response.status_code == 409, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["existing_id"] == first["id"]
    # The same name in another country is another organization.
    await service.create_organization(hq, name="Japan Science and Technology Agency", name_zh=None, country="FR")


async def test_only_its_creator_or_an_admin_changes_it(service, headers):
    mine = await service.create_organization(headers("province", "440000"))
    other = await service.client.patch(
        f"/v1/partners/organizations/{mine['id']}", json={"name": "Hijacked"}, headers=headers("province", "110000")
    )
    assert other.status_code == 403
    reader = await service.client.post(
        "/v1/partners/organizations", json=organization(), headers=headers("province", "440000", "reporting:read")
    )
    assert reader.status_code == 403
    admin = await service.client.patch(
        f"/v1/partners/organizations/{mine['id']}", json={"name": "Renamed by HQ"}, headers=headers("hq", "HQ", "admin")
    )
    assert admin.status_code == 200 and admin.json()["name"] == "Renamed by HQ"


async def test_list_filters_and_pages(service, headers):
    hq = headers()
    de = await service.create_organization(
        hq, name="Deutsche Akademie Leopoldina", name_zh="德国国家科学院", country="DE"
    )
    th = await service.create_organization(
        hq, name="Thai Academy of Science", name_zh=None, country="TH", kind="society"
    )
    intl = await service.create_organization(
        hq,
        name="World Federation of Engineering Organizations",
        name_zh="世界工程组织联合会",
        country=None,
        kind="international_org",
    )

    async def ids(**params):
        response = await service.client.get("/v1/partners/organizations", params=params, headers=hq)
        assert response.status_code == 200, response.text
        return {o["id"] for o in response.json()["items"]}

    assert de["id"] in await ids(country="de") and th["id"] not in await ids(country="DE")
    assert th["id"] in await ids(region="group:asean") and de["id"] not in await ids(region="group:asean")
    assert de["id"] in await ids(region="m49:150")
    assert await ids(q="leopoldina") == {de["id"]}
    assert await ids(q="工程组织") == {intl["id"]}
    assert th["id"] in await ids(kind="society") and de["id"] not in await ids(kind="society")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await service.client.get("/v1/partners/organizations", params=params, headers=hq)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and {de["id"], th["id"], intl["id"]} <= set(seen)
    assert seen == sorted(seen)
