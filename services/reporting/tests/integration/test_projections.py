"""Projections of the three topics against real Kafka and PostgreSQL: exact attribution, updates,
cancellations, redeliveries, out-of-order versions, cross-aggregate re-attribution, the DLQ."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from common.testing.plugin import read_topic
from support import (
    EVENTS,
    PARTNERS,
    TALENT,
    agreement_message,
    event_data,
    event_message,
    organization_message,
    person_message,
    prepare,
    running_service,
)


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(make_database, "rep_proj", kafka_bootstrap, f"{topic_prefix}proj.", jwt_secret)
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


def figures(obj):
    return obj["events"]["count"], obj["events"]["participants"], obj["events"]["countries"]


async def test_event_lifecycle_is_exact_under_redelivery_and_reordering(service):
    producer = service.producer
    base = service.seen()
    v1 = event_data(countries=["DE", "FR"], participants=100, start_date="2024-06-01", host_province="440000")
    v2 = {**v1, "version": 2, "host_province": "320000", "participants": 150, "countries": ["DE", "JP"]}
    first, second = event_message(v1), event_message(v2)
    other = event_data(countries=["DE"], participants=10, start_date="2024-02-01", host_province="440000")
    await producer.send(EVENTS, first, event_message(other))
    await producer.send(EVENTS, second, first, second)  # redelivery of both, and v1 again after v2
    await producer.send(EVENTS, event_message({**v1, "version": 1}))  # an old version under a new message id
    await service.settle(base + 6)

    gd, js = await service.region("cn:440000", 2024), await service.region("cn:320000", 2024)
    assert figures(gd) == (1, 10, 1)  # only `other` is left in Guangdong
    assert figures(js) == (1, 150, 2)
    europe = await service.region("m49:150", 2024)
    assert europe["events"]["count"] == 2 and europe["events"]["countries"] == 1  # DE only: FR left with v1
    asia = await service.region("m49:142", 2024)
    assert asia["events"]["count"] == 1 and asia["events"]["countries"] == 1  # JP
    everything = await service.region("all", 2024)
    assert figures(everything) == (2, 160, 2)
    assert everything["events"]["by_type"]["conference"] == 2
    all_years = await service.region("all")
    assert all_years["year"] is None and all_years["events"]["count"] >= 2

    cancelled = event_message({**v2, "version": 3, "status": "cancelled"})
    await producer.send(EVENTS, cancelled, second)  # v2 arriving again after the cancellation
    await service.settle(base + 8)
    assert figures(await service.region("cn:320000", 2024)) == (0, 0, 0)
    assert figures(await service.region("all", 2024)) == (1, 10, 1)
    assert (await service.region("m49:392" if False else "m49:142", 2024))["events"]["count"] == 0


async def test_home_region_rules(service):
    base = service.seen()
    abroad = event_data(
        host_country="DE", host_province=None, organizer=("province", "510000"), start_date="2023-01-01"
    )
    online = event_data(
        type="online", host_country="CN", host_province=None, organizer=("society", "CMES"), start_date="2023-01-02"
    )
    city = event_data(host_country="US", host_province=None, organizer=("province", "440300"), start_date="2023-01-03")
    await service.producer.send(EVENTS, event_message(abroad), event_message(online), event_message(city))
    await service.settle(base + 3)
    assert (await service.region("cn:510000", 2023))["events"]["count"] == 1
    assert (await service.region("cn:national", 2023))["events"]["count"] == 1
    assert (await service.region("cn:440000", 2023))["events"]["count"] == 1  # Shenzhen's code → Guangdong
    home_total = 0
    for code in ("cn:510000", "cn:national", "cn:440000"):
        home_total += (await service.region(code, 2023))["events"]["count"]
    assert home_total == (await service.region("all", 2023))["events"]["count"] == 3


async def test_agreements_follow_their_organizations_and_todays_date(service):
    base = service.seen()
    today = datetime.now(UTC).date()
    org_fr, org_intl = str(uuid.uuid4()), str(uuid.uuid4())
    soon = (today + timedelta(days=30)).isoformat()
    later = (today + timedelta(days=400)).isoformat()
    past = (today - timedelta(days=3)).isoformat()
    a1, a2, a3 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    # The agreement arrives before its organization (different topics partitions give no order).
    await service.producer.send(
        PARTNERS,
        agreement_message(
            a1, [org_fr, org_intl], signed_on="2022-03-01", expires_on=soon, signer=("province", "110000")
        ),
        agreement_message(a2, [org_fr], signed_on="2022-04-01", expires_on=later, signer=("society", "CAST")),
        agreement_message(a3, [org_fr], signed_on="2022-05-01", expires_on=past, signer=("province", "110000")),
    )
    await service.settle(base + 3)
    europe = await service.region("m49:150", 2022)
    assert europe["partners"]["agreements_signed"] == 0  # the organization's country is not known yet
    await service.producer.send(
        PARTNERS, organization_message(org_fr, "FR"), organization_message(org_intl, None, kind="international_org")
    )
    await service.settle(base + 5)
    europe = await service.region("m49:150", 2022)
    assert europe["partners"]["agreements_signed"] == 3
    assert europe["partners"]["agreements_active"] == 2  # a3's expiry date has passed, no message needed
    assert europe["partners"]["agreements_expiring_90d"] == 1
    assert europe["partners"]["countries"] == 1
    assert europe["partners"]["organizations"] == 1
    beijing = await service.region("cn:110000", 2022)
    assert beijing["partners"]["agreements_signed"] == 2
    assert (await service.region("cn:national", 2022))["partners"]["agreements_signed"] == 1
    everything = await service.region("all")
    assert everything["partners"]["organizations"] == 2  # the international organization only in `all`

    # The organization moves to Germany: every agreement naming it moves with it.
    await service.producer.send(PARTNERS, organization_message(org_fr, "DE", version=2))
    await service.settle(base + 6)
    assert (await service.region("m49:155", 2022))["partners"]["agreements_signed"] == 3  # Western Europe
    assert (await service.region("group:nordic", 2022))["partners"]["agreements_signed"] == 0
    # Terminated: still signed that year, no longer active.
    await service.producer.send(
        PARTNERS,
        agreement_message(
            a2,
            [org_fr],
            signed_on="2022-04-01",
            expires_on=later,
            signer=("society", "CAST"),
            version=2,
            status="terminated",
            type_="exchange.agreement.terminated",
        ),
    )
    await service.settle(base + 7)
    europe = await service.region("m49:150", 2022)
    assert europe["partners"]["agreements_signed"] == 3 and europe["partners"]["agreements_active"] == 1


async def test_talent_pool_and_posts(service):
    base = service.seen()
    p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
    posts = [
        {
            "organization": "ISO",
            "organization_country": "CH",
            "role": "vice_president",
            "start_date": "2020-01-01",
            "end_date": "2021-12-31",
        },
        {
            "organization": "IUPAC",
            "organization_country": None,
            "role": "member",
            "start_date": "2021-06-01",
            "end_date": None,
        },
    ]
    await service.producer.send(
        TALENT,
        person_message(p1, groups=["woman_scientist", "young_scientist"], reserve=True, posts=posts, province="310000"),
        person_message(p2, groups=["engineer"], country="DE", province=None, society="CAST"),
    )
    await service.settle(base + 2)
    shanghai = await service.region("cn:310000", 2021)
    assert shanghai["talent"]["persons"] == 1
    assert shanghai["talent"]["posts"] == 2  # both held in 2021
    assert (await service.region("cn:310000", 2020))["talent"]["posts"] == 1
    assert (await service.region("cn:310000", 2030))["talent"]["posts"] == 1  # the open post
    assert (await service.region("cn:310000"))["talent"]["posts_by_role"]["vice_president"] == 1
    assert (await service.region("m49:155"))["talent"]["posts"] == 1  # Switzerland, Western Europe
    germany = await service.region("m49:155")
    assert germany["talent"]["persons"] == 1 and germany["talent"]["by_group"]["engineer"] == 1
    assert (await service.region("cn:national"))["talent"]["persons"] >= 1
    # Removal: every figure of the person goes.
    await service.producer.send(TALENT, person_message(p1, version=2, removed=True))
    await service.settle(base + 3)
    shanghai = await service.region("cn:310000")
    assert shanghai["talent"]["persons"] == 0 and shanghai["talent"]["posts"] == 0


async def test_invalid_messages_go_to_the_dlq_and_are_counted(service, kafka_bootstrap):
    base = service.seen()
    bad_country = event_message(event_data(countries=["ZZ"]))
    await service.producer.send(EVENTS, b"{not json", bad_country)
    ok = event_message(event_data(start_date="2019-01-01"))
    await service.producer.send(EVENTS, ok)
    await service.settle(base + 3)
    dead = await read_topic(kafka_bootstrap, service.settings.topic(EVENTS) + ".dlq", expected=2)
    assert len(dead) == 2
    async with service.client() as client:
        text = (await client.get("/metrics")).text
    assert 'consumer_dead_letters_total{service="reporting"' in text
    assert "consumer_lag{" in text


async def test_an_agreement_status_too_long_for_its_column_is_dead_lettered(service, kafka_bootstrap):
    """rm_agreement_regions.status is String(16): a 17-character status goes to the DLQ at decode
    instead of failing the batch's transaction, and the messages around it are applied."""
    base = service.seen()
    org = str(uuid.uuid4())
    before = (await service.region("m49:150"))["partners"]["agreements_signed"]
    poison = agreement_message(str(uuid.uuid4()), [org], status="s" * 17)
    await service.producer.send(
        PARTNERS, organization_message(org, "FR"), poison, agreement_message(str(uuid.uuid4()), [org])
    )
    await service.settle(base + 3)
    dead = await read_topic(kafka_bootstrap, service.settings.topic(PARTNERS) + ".dlq", expected=1)
    assert [m.key.decode() for m in dead] == [poison.subject]
    assert dict(dead[0].headers)["dlq.reason"] == b"invalid-data"
    assert (await service.region("m49:150"))["partners"]["agreements_signed"] == before + 1


async def test_bodies_list_every_province_and_flags_the_silent_ones(service):
    async with service.client() as client:
        body = (await client.get("/v1/bodies", params={"year": 2024})).json()
    rows = {(b["kind"], b["code"]): b for b in body["items"]}
    from common.regions import PROVINCES

    assert {("province", p.code) for p in PROVINCES} <= set(rows)
    assert ("province", "440300") in rows  # a sub-provincial body that reported is listed too
    assert rows[("province", "440000")]["events"] >= 1 and not rows[("province", "440000")]["nothing_recorded"]
    assert rows[("province", "440000")]["last_change"] is not None
    assert rows[("province", "650000")]["nothing_recorded"]
    assert ("society", "CMES") in rows


async def test_reads_need_the_reporting_scope(service, token):
    async with service.client(headers={}) as anonymous:
        assert (await anonymous.get("/v1/metrics")).status_code == 401
    async with service.client(headers={"Authorization": token("province", "440000", "events:write")}) as writer:
        response = await writer.get("/v1/regions")
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
    async with service.client() as client:
        assert (await client.get("/v1/metrics/regions/nowhere")).status_code == 404
        assert (await client.get("/v1/metrics", params={"year": "x"})).status_code == 422
        regions = (await client.get("/v1/regions")).json()["items"]
        assert {"all", "m49:150", "group:asean", "cn:440000", "cn:national"} <= {r["code"] for r in regions}
        listing = (await client.get("/v1/metrics", params={"year": 2024, "kind": "province"})).json()
        assert len(listing["regions"]) == 34


async def test_targets_and_annual_report(service):
    async with service.client() as client:
        targets = (await client.get("/v1/targets")).json()
        keys = {t["key"]: t for t in targets["targets"]}
        assert keys["partners"]["target"] == 150 and keys["agreements"]["target"] == 120
        assert keys["people"]["value"] >= 1 and keys["people"]["progress"] >= 0
        csv_response = await client.get("/v1/reports/annual", params={"year": 2024, "format": "csv"})
        assert csv_response.status_code == 200
        text = csv_response.content.decode("utf-8-sig")
        header, *lines = text.splitlines()
        assert "地区代码 Region code" in header and "活动 Events" in header
        # Breakdown columns carry the producers' vocabulary labels (the catalogue), never a raw key.
        assert "活动：来访团组 Events: Incoming delegation" in header
        assert "任职：秘书长 Posts: Secretary-general" in header and "人才：女科学家 People: Women scientists" in header
        assert not re.search(r"delegation_in|secretary_general|woman_scientist", header)
        assert len(lines) == len((await client.get("/v1/regions")).json()["items"])
        xlsx = await client.get("/v1/reports/annual", params={"year": 2024, "format": "xlsx"})
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(xlsx.content)).active
    assert sheet["A1"].value == "地区代码 Region code" and sheet.max_row == len(lines) + 1


def test_dates_are_today():
    assert date.today() <= datetime.now(UTC).date() + timedelta(days=1)


async def test_agreement_status_follows_the_calendar_without_messages(service):
    """The same stored rows read on later days: active and expiring figures move with the date."""
    from common.db import create_engine, session_factory
    from reporting.read.queries import region_objects

    base = service.seen()
    today = datetime.now(UTC).date()
    org = str(uuid.uuid4())
    agreement = str(uuid.uuid4())
    expires = today + timedelta(days=120)
    await service.producer.send(
        PARTNERS,
        organization_message(org, "NO"),
        agreement_message(agreement, [org], signed_on="2021-06-01", expires_on=expires.isoformat()),
    )
    await service.settle(base + 2)
    engine = create_engine(service.settings.database_url)
    try:
        async with session_factory(engine)() as session:

            async def nordic_on(day: date) -> tuple[int, int]:
                (obj,) = await region_objects(session, ["group:nordic"], 2021, today=day)
                return obj["partners"]["agreements_active"], obj["partners"]["agreements_expiring_90d"]

            assert await nordic_on(today) == (1, 0)
            assert await nordic_on(today + timedelta(days=40)) == (1, 1)  # now within 90 days of expiry
            assert await nordic_on(expires + timedelta(days=1)) == (0, 0)  # expired, no message needed
    finally:
        await engine.dispose()


async def test_the_dashboard_reads_its_labels_from_the_catalogue(service):
    async with service.client() as client:
        response = await client.get("/dashboard/labels.json", headers={"Authorization": ""})
    assert response.status_code == 200
    served = response.json()
    assert served["metrics"]["events.count"] == {"zh": "活动", "en": "Events", "unit": "events"}
    assert served["event_types"]["delegation_in"]["en"] == "Incoming delegation"
